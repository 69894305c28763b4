#include "der.h"

ASN1_SEQUENCE(KR_SIGNED) =
	{
		ASN1_SIMPLE(KR_SIGNED, tbs, ASN1_ANY),
		ASN1_SIMPLE(KR_SIGNED, alg, X509_ALGOR),
		ASN1_SIMPLE(KR_SIGNED, sig, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(KR_SIGNED)

		ASN1_SEQUENCE(KR_SPKI) =
			{
				ASN1_SIMPLE(KR_SPKI, alg, X509_ALGOR),
				ASN1_SIMPLE(KR_SPKI, key, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(KR_SPKI)

				ASN1_SEQUENCE(KR_REQ_INFO) =
					{
						ASN1_SIMPLE(KR_REQ_INFO, version, ASN1_INTEGER),
						ASN1_SIMPLE(KR_REQ_INFO, subject, X509_NAME),
						ASN1_SIMPLE(KR_REQ_INFO, spki, KR_SPKI),
						ASN1_IMP_SET_OF(KR_REQ_INFO, attributes,
								X509_ATTRIBUTE, 0),
} ASN1_SEQUENCE_END(KR_REQ_INFO)

						ASN1_SEQUENCE(KR_VALIDITY) =
							{
								ASN1_SIMPLE(KR_VALIDITY, not_before,
									    ASN1_TIME),
								ASN1_SIMPLE(KR_VALIDITY, not_after,
									    ASN1_TIME),
} ASN1_SEQUENCE_END(KR_VALIDITY)

								ASN1_SEQUENCE(KR_TBS) = {
									ASN1_EXP_OPT(KR_TBS,
										     version,
										     ASN1_INTEGER,
										     0),
									ASN1_SIMPLE(KR_TBS, serial,
										    ASN1_INTEGER),
									ASN1_SIMPLE(KR_TBS, sigalg,
										    X509_ALGOR),
									ASN1_SIMPLE(KR_TBS, issuer,
										    ASN1_ANY),
									ASN1_SIMPLE(KR_TBS,
										    validity,
										    KR_VALIDITY),
									ASN1_SIMPLE(KR_TBS, subject,
										    X509_NAME),
									ASN1_SIMPLE(KR_TBS, spki,
										    ASN1_ANY),
									ASN1_EXP_SEQUENCE_OF_OPT(
										KR_TBS, extensions,
										X509_EXTENSION, 3),
} ASN1_SEQUENCE_END(KR_TBS)
