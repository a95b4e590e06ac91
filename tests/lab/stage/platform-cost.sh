# Lab staging hook: bench/platform_cost (static) for 90-bench.sh, which
# measures irqchip/PIT/memslot costs on L1's KVM.
set -euo pipefail
${CC:-gcc} -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -static -o "$SHARE/platform_cost" bench/platform_cost.c
