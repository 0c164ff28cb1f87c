#!/usr/bin/python3
"""Packs buoy's image as an OCI image archive, without Docker or a registry.

Two layers: the Debian root file system (a tar made by debootstrap), and
buoy's files on top of it. Written as an OCI image layout in one tar
(oci-layout, index.json, blobs/sha256/...), which `ctr images import`
reads; the index names the image for containerd (io.containerd.image.name).
Reproducible: members sorted, times and owners fixed, gzip without a date;
the same inputs give the same bytes.

  oci-pack.py --base rootfs.tar --add SRC:DEST[:MODE] ... --link DEST:TARGET ...
              --name docker.io/library/buoy:0.1.0 --out buoy-image.tar
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

EPOCH = 0  # every file's mtime in the layers


def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = EPOCH
    info.uname = info.gname = ""
    info.pax_headers = {}
    return info


def base_layer(path: str) -> bytes:
    """The root file system, re-written sorted with fixed times."""
    out = io.BytesIO()
    with tarfile.open(path) as source, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as layer:
        members = sorted(source.getmembers(), key=lambda m: m.name.lstrip("./"))
        # A hard link must come after the file it names: files first, links after.
        members = [m for m in members if not m.islnk()] + [m for m in members if m.islnk()]
        for member in members:
            name = member.name.lstrip("./").lstrip("/")
            if name == "":
                continue
            member.name = name
            if member.islnk():
                member.linkname = member.linkname.lstrip("./").lstrip("/")
            data = source.extractfile(member) if member.isfile() else None
            layer.addfile(normalise(member), data)
    return out.getvalue()


def app_layer(adds: list, links: list) -> bytes:
    """buoy's files: each SRC at DEST with MODE, directories made on the way."""
    out = io.BytesIO()
    entries = {}
    for src, dest, mode in adds:
        parts = dest.strip("/").split("/")
        for i in range(1, len(parts)):
            entries.setdefault("/".join(parts[:i]), ("dir", None, 0o755))
        entries["/".join(parts)] = ("file", src, mode)
    for dest, target in links:
        parts = dest.strip("/").split("/")
        for i in range(1, len(parts)):
            entries.setdefault("/".join(parts[:i]), ("dir", None, 0o755))
        entries["/".join(parts)] = ("link", target, 0o777)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for name in sorted(entries):
            kind, value, mode = entries[name]
            info = tarfile.TarInfo(name)
            info.mode = mode
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                layer.addfile(normalise(info))
            elif kind == "link":
                info.type = tarfile.SYMTYPE
                info.linkname = value
                layer.addfile(normalise(info))
            else:
                with open(value, "rb") as handle:
                    data = handle.read()
                info.size = len(data)
                layer.addfile(normalise(info), io.BytesIO(data))
    return out.getvalue()


def gz(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as handle:
        handle.write(data)
    return out.getvalue()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="the root file system, a tar")
    parser.add_argument("--add", action="append", default=[], help="SRC:DEST[:MODE (octal)]")
    parser.add_argument("--link", action="append", default=[], help="DEST:TARGET (a symbolic link)")
    parser.add_argument("--name", required=True, help="the image's name for containerd")
    parser.add_argument("--cmd", default='["buoy", "--help"]', help="the image's Cmd, JSON")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    adds = []
    for spec in args.add:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not os.path.isfile(parts[0]):
            print(f"oci-pack: --add {spec}: want SRC:DEST[:MODE] with SRC a file", file=sys.stderr)
            return 2
        adds.append((parts[0], parts[1], int(parts[2], 8) if len(parts) == 3 else 0o644))
    links = [tuple(spec.split(":", 1)) for spec in args.link]

    layers = [base_layer(args.base), app_layer(adds, links)]
    compressed = [gz(layer) for layer in layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": json.loads(args.cmd),
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [digest(layer) for layer in layers]},
        "history": [
            {"created_by": "debootstrap (scripts/image/build.sh)"},
            {"created_by": "buoy's files (scripts/image/oci-pack.py)"},
        ],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest(blob),
                "size": len(blob),
            }
            for blob in compressed
        ],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    tag = args.name.rsplit(":", 1)[1] if ":" in args.name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest(manifest_bytes),
                "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": args.name,
                    "org.opencontainers.image.ref.name": tag,
                },
            }
        ],
    }
    files = [("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())]
    files.append(("index.json", json.dumps(index, sort_keys=True, separators=(",", ":")).encode()))
    for blob in [config_bytes, manifest_bytes, *compressed]:
        files.append(("blobs/sha256/" + digest(blob).split(":")[1], blob))
    tmp = args.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for directory in ["blobs", "blobs/sha256"]:
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            archive.addfile(normalise(info))
        for name, data in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(normalise(info), io.BytesIO(data))
    os.replace(tmp, args.out)
    size = os.path.getsize(args.out)
    print(f"{args.out}: {args.name}, {digest(manifest_bytes)}, {size / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
