#include <stdio.h>

int main(void)
{
	puts("warren: under construction");
	return 0;
}
