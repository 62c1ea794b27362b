/**
 * TLS 1.3 only, AES-128-GCM first, for the ring's data plane. OpenSSL's default puts AES-256-GCM
 * first; AES-128 takes 10 rounds to its 14 with the same GCM tag (128-bit security, TLS 1.3's
 * mandatory suite), 7% faster on 16 KB records here (`openssl speed -evp aes-128-gcm -bytes 16384`:
 * 4.6 GB/s against 4.3). Both sides list it first, so it wins either side's preference.
 * bench/allreduce-bandwidth.ts --transports tcp,tcp+tls measures what TLS costs the ring.
 */
export const RING_TLS_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
export const RING_TLS_MIN_VERSION = 'TLSv1.3';
