/*
 * demo_certs.h: the benchmarks' TLS credentials (reseau-bench-tls,
 * reseau-bench-memory): a throwaway CA and a localhost leaf (EC P-256, valid
 * to 2046, SANs localhost, 127.0.0.1 and ::1), the same as
 * examples/tls_echo.c. Never trust them. Include once per program.
 */
#ifndef RESEAU_BENCH_DEMO_CERTS_H
#define RESEAU_BENCH_DEMO_CERTS_H

static const char demo_ca[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBtDCCAVugAwIBAgIUZE1XFt1PiuiJjb8Cze+9AZ8OCKQwCgYIKoZIzj0EAwIw\n"
    "KDEmMCQGA1UEAwwdcmVzZWF1IGRlbW8gQ0EgKGRvIG5vdCB0cnVzdCkwHhcNMjYx\n"
    "MjAyMDIxMDMxWhcNNDYxMTI3MDIxMDMxWjAoMSYwJAYDVQQDDB1yZXNlYXUgZGVt\n"
    "byBDQSAoZG8gbm90IHRydXN0KTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOAl\n"
    "pN/Tq5vB9HVZYZ+hZ7IOliq9P/tB8hIk9q6PqsoOgI6E9KGSxVfNgeWkxvoDCCl0\n"
    "k5f4RFdNW0wXgKKG0JWjYzBhMB0GA1UdDgQWBBQEFIWXHoXLfT8V8s7YiZwCDi14\n"
    "4TAfBgNVHSMEGDAWgBQEFIWXHoXLfT8V8s7YiZwCDi144TAPBgNVHRMBAf8EBTAD\n"
    "AQH/MA4GA1UdDwEB/wQEAwICBDAKBggqhkjOPQQDAgNHADBEAiB0jqKiY1Ra5XDT\n"
    "iyHV0dfbGghm0YGGVCYPhpJp008DlwIgMJKaoi+PI/l1nX/13NKMgY2WG+rNtc4D\n"
    "SNo1tYJ+pBQ=\n"
    "-----END CERTIFICATE-----\n";
static const char demo_cert[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB4TCCAYagAwIBAgIUSC4o8ApGwurk4BQFmeemewDVN8swCgYIKoZIzj0EAwIw\n"
    "KDEmMCQGA1UEAwwdcmVzZWF1IGRlbW8gQ0EgKGRvIG5vdCB0cnVzdCkwHhcNMjYx\n"
    "MjAyMDIxMDMyWhcNNDYwMTMxMDIxMDMyWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3Qw\n"
    "WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARszSbQ0bPy5OkKW9vBw1gTsdNm+moV\n"
    "eBwGjAAe4Ts7rstDG5JkEqXjMdlImXuF9VwZF7Sb6jE6i7E23/T3oVfQo4GhMIGe\n"
    "MAkGA1UdEwQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMB\n"
    "MCwGA1UdEQQlMCOCCWxvY2FsaG9zdIcEfwAAAYcQAAAAAAAAAAAAAAAAAAAAATAd\n"
    "BgNVHQ4EFgQUUGcfR6avu/kDaRIWolE1hePJIZcwHwYDVR0jBBgwFoAUBBSFlx6F\n"
    "y30/FfLO2ImcAg4teOEwCgYIKoZIzj0EAwIDSQAwRgIhALRT+xEO6MrZUCIz0vaW\n"
    "tKIv43BWht4oivHqDprPpgM0AiEAm0GyFPdoiI0+SouRVgU1ArXXEYJ6/hd9fUEA\n"
    "QW4T8HI=\n"
    "-----END CERTIFICATE-----\n";
static const char demo_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgmG8ikcluk/EeTPL1\n"
    "v1n4n6YVlv8PtGPWbrWMJLFQrg2hRANCAARszSbQ0bPy5OkKW9vBw1gTsdNm+moV\n"
    "eBwGjAAe4Ts7rstDG5JkEqXjMdlImXuF9VwZF7Sb6jE6i7E23/T3oVfQ\n"
    "-----END PRIVATE KEY-----\n";

#endif /* RESEAU_BENCH_DEMO_CERTS_H */
