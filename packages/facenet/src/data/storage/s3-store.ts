import { GetObjectCommand, NoSuchKey, S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { DatasetError } from '../../errors';
import { checkRange, ObjectStore } from './object-store';

/**
 * Objects under s3://bucket/prefix, on AWS or any S3-compatible server. Endpoint, region and
 * credentials come from the environment (FACENET_S3_ENDPOINT or AWS_ENDPOINT_URL, AWS_REGION,
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or the SDK's other providers), in Kubernetes from a
 * Secret; they are never logged. The SDK retries throttling, 5xx and network errors (3 tries).
 */
export class S3Store implements ObjectStore {
  readonly base: string;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly client: S3Client;

  constructor(url: string, env: NodeJS.ProcessEnv = process.env) {
    const u = new URL(url);
    this.bucket = u.hostname;
    this.prefix = u.pathname.replace(/^\/+/, '').replace(/([^/])$/, '$1/');
    this.base = `s3://${this.bucket}/${this.prefix}`;
    const endpoint = env.FACENET_S3_ENDPOINT || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
    this.client = new S3Client({
      region: env.AWS_REGION || 'us-east-1',
      endpoint,
      // Self-hosted S3 servers answer at one host, the bucket in the path.
      forcePathStyle: !!endpoint,
      maxAttempts: 3,
      // Keys from the environment (a Kubernetes Secret); else the SDK's chain (profiles, IRSA, instance roles).
      credentials:
        env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
          ? {
              accessKeyId: env.AWS_ACCESS_KEY_ID,
              secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
              sessionToken: env.AWS_SESSION_TOKEN || undefined,
            }
          : undefined,
    });
  }

  private async get(name: string, range?: string): Promise<Readable> {
    const key = this.prefix + name;
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range }));
      return r.Body as Readable;
    } catch (err) {
      const e = err as Error & { $metadata?: { httpStatusCode?: number } };
      if (err instanceof NoSuchKey || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404)
        throw new DatasetError(`s3://${this.bucket}/${key}: no such object`);
      throw new DatasetError(`s3://${this.bucket}/${key}: ${e.name}: ${e.message}`);
    }
  }

  async read(name: string, offset: number, length: number): Promise<Buffer> {
    checkRange(`${this.base}${name}`, offset, length);
    const body = await this.get(name, `bytes=${offset}-${offset + length - 1}`);
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    const buf = Buffer.concat(chunks);
    if (buf.length !== length) throw new DatasetError(`${this.base}${name}: got ${buf.length} bytes of the ${length} asked for`);
    return buf;
  }

  open(name: string): Promise<Readable> {
    return this.get(name);
  }
}
