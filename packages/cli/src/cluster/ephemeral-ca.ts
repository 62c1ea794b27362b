import 'reflect-metadata'; // @peculiar/x509 resolves its services through tsyringe, which needs it
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** PEM files of a ring CA and the one certificate every local worker presents (FACENET_TLS_*). */
export interface RingTls {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

const pem = (label: string, der: ArrayBuffer) =>
  `-----BEGIN ${label}-----\n${Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trim()}\n-----END ${label}-----\n`;

/**
 * Makes a throwaway certificate authority and one worker certificate it signs (P-256, valid for
 * a week, names 127.0.0.1, ::1 and localhost, server and client use), for `facenet up`'s ring:
 * mutual TLS with nothing to configure. The CA's private key is never written: nobody can sign
 * another certificate for this cluster. @peculiar/x509 builds the certificates (Node's crypto makes
 * keys but no X.509); Debian's openssl would do too, but not on every user's machine.
 */
export async function makeRingTls(): Promise<RingTls> {
  const now = new Date();
  const notAfter = new Date(now.getTime() + 7 * 24 * 3600_000);
  const caKeys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: 'CN=facenet up ring CA (ephemeral)',
    notBefore: now,
    notAfter,
    signingAlgorithm: EC,
    keys: caKeys,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  const workerKeys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex'),
    subject: 'CN=facenet up worker',
    issuer: ca.subject,
    notBefore: now,
    notAfter,
    signingAlgorithm: EC,
    publicKey: workerKeys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'ip', value: '127.0.0.1' },
        { type: 'ip', value: '::1' },
        { type: 'dns', value: 'localhost' },
      ]),
    ],
  });
  const dir = mkdtempSync(join(tmpdir(), 'facenet-ring-tls-'));
  const files = { ca: join(dir, 'ca.pem'), cert: join(dir, 'worker.pem'), key: join(dir, 'worker.key') };
  writeFileSync(files.ca, ca.toString('pem'));
  writeFileSync(files.cert, cert.toString('pem'));
  writeFileSync(files.key, pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', workerKeys.privateKey)), { mode: 0o600 });
  chmodSync(dir, 0o700);
  return { dir, ...files };
}
