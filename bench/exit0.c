/* exit0: the static binary whose fork+exec+wait `make bench-create` times
 * against VM creation (glibc, -static: like the reference baselines). */
int main(void)
{
	return 0;
}
