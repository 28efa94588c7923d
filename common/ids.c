/* ids.c - see ids.h. */
#include "sitepulse/ids.h"

#include <string.h>

static bool id_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool sp_id_valid(const char *s, size_t len)
{
	if (s == NULL || len == 0 || len > SP_ID_MAX)
		return false;
	unsigned char first = (unsigned char)s[0];
	if (!((first >= 'a' && first <= 'z') || (first >= '0' && first <= '9')))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!id_char((unsigned char)s[i]))
			return false;
	return true;
}

bool sp_id_valid_str(const char *s)
{
	return s != NULL && sp_id_valid(s, strnlen(s, SP_ID_MAX + 1));
}
