/* One CSV record per line (RFC 4180 section 2, without line breaks
 * inside a field: keyrite's manifests and registry files are line-based). */
#include "csv.h"

#include <ctype.h>
#include <string.h>

int kr_csv_split(char *line, char *fields[], int max)
{
	int n = 0;
	char *p = line;
	for (;;) {
		if (n == max)
			return -1;
		if (*p == '"') {
			char *w = ++p;
			fields[n++] = w;
			for (;;) {
				if (*p == '\0')
					return -2; /* unterminated quote */
				if (*p == '"' && p[1] == '"') {
					*w++ = '"';
					p += 2;
				} else if (*p == '"') {
					p++;
					break;
				} else {
					*w++ = *p++;
				}
			}
			*w = '\0';
			if (*p != ',' && *p != '\0')
				return -3;
		} else {
			fields[n++] = p;
			p += strcspn(p, ",");
		}
		if (*p == '\0')
			return n;
		*p++ = '\0';
	}
}

char *kr_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}
