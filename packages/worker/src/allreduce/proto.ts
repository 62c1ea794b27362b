import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../generated/allreduce';

/** proto/ at the repository root (the .proto files ship beside the built packages). */
export const PROTO_DIR = process.env.FACENET_PROTO_DIR ?? join(__dirname, '..', '..', '..', '..', 'proto');

let loaded: ProtoGrpcType | undefined;

/** The facenet.v1 package, loaded once. Options match the type generator's (proto script). */
export function facenetProto(): ProtoGrpcType {
  loaded ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(join(PROTO_DIR, 'facenet', 'v1', 'allreduce.proto'), {
      keepCase: true,
      longs: Number,
      defaults: true,
      oneofs: true,
    }),
  ) as unknown as ProtoGrpcType;
  return loaded;
}
