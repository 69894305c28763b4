/* JSON output, one object per line. */
#ifndef KR_JSON_H
#define KR_JSON_H

#include <stdio.h>

/* Writes s as a JSON string (RFC 8259 section 7), or null when s is NULL. */
void kr_json_str(FILE *f, const char *s);

#endif
