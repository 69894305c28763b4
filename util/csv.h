/* One RFC 4180 record per line: manifests (keyrite issue), the registry's
 * device and auth code files (keyrite registry). */
#ifndef KR_UTIL_CSV_H
#define KR_UTIL_CSV_H

/* Splits line in place into at most max fields, unquoting "..." fields
 * ("" inside one is a quote). Returns the count; -1 for more than max
 * fields, -2 for an unterminated quote, -3 for text after a closing quote. */
int kr_csv_split(char *line, char *fields[], int max);

/* s without leading and trailing white space (in place). */
char *kr_trim(char *s);

#endif
