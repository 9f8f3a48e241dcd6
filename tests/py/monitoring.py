#!/usr/bin/env python3
"""Independent readers of what tidelake's monitoring writes, for its integration tests,
run with the venv that scripts/test.sh creates. Each sub-command prints one JSON
document on stdout and exits 0; on any error a traceback on stderr and non-zero.

    monitoring.py metrics
        Parses the Prometheus text format on stdin with the `prometheus_client`
        package's parser (prometheus_client.parser.text_string_to_metric_families).
        Prints {"families": {name: type}, "samples": [{"name": str, "labels": {str: str},
        "value": float}]}; a sample's name has its suffix (`_total`, `_bucket`, ...).

    monitoring.py images FILE...
        Reads each file as an image: SVG with xml.etree (the root must be an <svg>
        element), PNG by its signature and IHDR chunk. Prints [{"file": str, "kind":
        "svg"|"png", "width": int, "height": int, "elements": int}].
"""
import json
import struct
import sys
import xml.etree.ElementTree as ET

from prometheus_client.parser import text_string_to_metric_families


def metrics():
    families = {}
    samples = []
    for family in text_string_to_metric_families(sys.stdin.read()):
        families[family.name] = family.type
        for sample in family.samples:
            samples.append({"name": sample.name, "labels": dict(sample.labels), "value": sample.value})
    return {"families": families, "samples": samples}


def image(path):
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        if data[12:16] != b"IHDR":
            raise ValueError(f"{path}: a PNG without IHDR first")
        width, height = struct.unpack(">II", data[16:24])
        return {"file": path, "kind": "png", "width": width, "height": height, "elements": 0}
    root = ET.fromstring(data)
    if not root.tag.endswith("svg"):
        raise ValueError(f"{path}: the root element is {root.tag}, not svg")
    width = int(float(root.get("width", "0")))
    height = int(float(root.get("height", "0")))
    return {"file": path, "kind": "svg", "width": width, "height": height,
            "elements": sum(1 for _ in root.iter())}


def main():
    command = sys.argv[1]
    if command == "metrics":
        out = metrics()
    elif command == "images":
        out = [image(path) for path in sys.argv[2:]]
    else:
        raise SystemExit(f"unknown command {command}")
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
