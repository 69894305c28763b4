/* Growing arrays. */
#ifndef KR_MEM_H
#define KR_MEM_H

#include "err.h"

#include <stddef.h>

/* Makes the array *p (room for *cap elements of size bytes) hold at least
 * need elements, doubling; KR_EINTERNAL if memory runs out (*p unchanged). */
KR_MUST_USE kr_err kr_grow(void **p, size_t *cap, size_t need, size_t size);

#endif
