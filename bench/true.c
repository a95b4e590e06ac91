/* true: the static program that fork+exec+wait starts in bench-run. */
int main(void)
{
	return 0;
}
