#!/usr/bin/env python3
"""The RNG device's generator, written from docs/rng-device.md alone (no code
shared with src/devices/rng.c), so that tests can predict what the device
returns. Usage: rng_ref.py SEED COUNT  -> COUNT numbers, one per line.

Before printing anything it checks itself against the published output of
the PCG reference demo (initstate 42, stream 54), which the document says
seed 42 reproduces."""
import sys

MASK64 = (1 << 64) - 1
MULTIPLIER = 6364136223846793005
INCREMENT = 2 * 54 + 1  # stream 54; an LCG increment must be odd


class Pcg32:
    def __init__(self, seed):
        self.state = 0
        self._step()
        self.state = (self.state + seed) & MASK64
        self._step()

    def _step(self):
        self.state = (self.state * MULTIPLIER + INCREMENT) & MASK64

    def next(self):
        old = self.state
        self._step()
        xorshifted = (((old >> 18) ^ old) >> 27) & 0xFFFFFFFF
        rot = old >> 59
        return ((xorshifted >> rot) | (xorshifted << ((-rot) & 31))) & 0xFFFFFFFF


def main():
    published = [0xA15C02B7, 0x7B47F409, 0xBA1D3330, 0x83D2F293, 0xBFA4784B, 0xCBED606E]
    check = Pcg32(42)
    if [check.next() for _ in published] != published:
        sys.exit("rng_ref: does not reproduce the PCG reference vector")
    if len(sys.argv) != 3:
        sys.exit("usage: rng_ref.py SEED COUNT")
    seed, count = int(sys.argv[1], 0), int(sys.argv[2], 0)
    if not 0 <= seed <= 0xFFFFFFFF or count < 0:
        sys.exit("rng_ref: SEED must be 0..4294967295 and COUNT >= 0")
    g = Pcg32(seed)
    sys.stdout.write("".join("%d\n" % g.next() for _ in range(count)))


if __name__ == "__main__":
    main()
