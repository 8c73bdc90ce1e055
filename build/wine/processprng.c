/*
 * ProcessPrng for Wine 8.0 (Debian 12), whose bcryptprimitives.dll lacks
 * it: the Go runtime (1.22 and later) calls it at start and dies without it.
 * Built by `make test` into the test Wine prefix's system32 only; it is
 * never part of the Windows bundle.
 */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
