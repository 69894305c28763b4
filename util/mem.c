#include "mem.h"

#include <stdint.h>
#include <stdlib.h>

KR_MUST_USE kr_err kr_grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return kr_ok();
	size_t c = *cap ? *cap : 16;
	while (c < need)
		c *= 2;
	KR_ENSURE(c <= SIZE_MAX / size, KR_EINTERNAL, "out of memory");
	void *q = realloc(*p, c * size);
	KR_ENSURE(q, KR_EINTERNAL, "out of memory");
	*p = q;
	*cap = c;
	return kr_ok();
}
