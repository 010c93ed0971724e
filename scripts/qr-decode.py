#!/usr/bin/env python3
"""Decode the QR Code in an image and print its text.

Usage: python3 decode.py IMAGE [--bytes]
IMAGE may be a PGM (P2 or P5, parsed here without PIL) or anything Pillow opens (PNG, ...).
Prints the decoded text exactly (no trailing newline); with --bytes, prints the raw
payload bytes as hex instead. Exits 1 if no QR Code is found.
Needs: pip install zxing-cpp numpy (and pillow for non-PGM images).
"""
import sys

import numpy as np
import zxingcpp


def load_gray(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] in (b"P2", b"P5"):
        # Header: magic, width, height, maxval, separated by whitespace; '#' starts a comment.
        fields, pos = [], 2
        while len(fields) < 3:
            while data[pos:pos + 1].isspace():
                pos += 1
            if data[pos:pos + 1] == b"#":
                pos = data.index(b"\n", pos) + 1
                continue
            start = pos
            while not data[pos:pos + 1].isspace():
                pos += 1
            fields.append(int(data[start:pos]))
        width, height, maxval = fields
        if data[:2] == b"P5":
            pixels = np.frombuffer(data, dtype=np.uint8 if maxval < 256 else ">u2",
                                   count=width * height, offset=pos + 1)
        else:
            pixels = np.array(data[pos:].split()[:width * height], dtype=np.int64)
        pixels = (pixels.astype(np.float64) * 255 / maxval).astype(np.uint8)
        return pixels.reshape(height, width)
    from PIL import Image  # Only needed for non-PGM images.
    image = Image.open(path)
    if image.mode in ("RGBA", "LA", "P"):
        # Flatten transparency onto white so a transparent quiet zone still reads as light.
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return np.asarray(image.convert("L"))


def decode(path):
    """Return the zxing-cpp Result for the first QR Code in the image, or None."""
    results = zxingcpp.read_barcodes(load_gray(path), formats=zxingcpp.BarcodeFormat.QRCode)
    return results[0] if results else None


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: decode.py IMAGE [--bytes]")
    result = decode(sys.argv[1])
    if result is None:
        print("no QR Code found", file=sys.stderr)
        sys.exit(1)
    if "--bytes" in sys.argv[2:]:
        sys.stdout.write(bytes(result.bytes).hex())
    else:
        sys.stdout.buffer.write(result.text.encode("utf-8"))


if __name__ == "__main__":
    main()
