#!/bin/sh
# Builds every image the local overlay runs, with podman and no registry:
#   docker.io/library/node:20-bookworm-slim  the Dockerfile's base (build-base-image.sh)
#   localhost/facenet-redis:debian           stand-in for redis:7.2 (Containerfile.redis)
#   localhost/facenet:latest                 deploy/docker/Dockerfile, unchanged
# Builds use the host network (npm ci and apt reach their registries from there).
#
#   CONTAINERS_CONF=deploy/podman/containers.conf deploy/podman/build-images.sh
set -eu
cd "$(dirname "$0")/../.."
deploy/podman/build-base-image.sh
podman image exists localhost/facenet-redis:debian ||
  podman build --network=host --pull=never -f deploy/podman/Containerfile.redis -t localhost/facenet-redis:debian deploy/podman
podman build --network=host --pull=never -f deploy/docker/Dockerfile -t localhost/facenet:latest -t "localhost/facenet:$(node -p "require('./package.json').version")" .
