"""A PEP 503 simple index over a folder of wheels, served on 127.0.0.1 for scripts/bench-egg.sh.

Usage: serve_index.py WHEELS_DIR SITE_DIR PORT_FILE

Builds SITE_DIR/simple/<project>/index.html (anchors with #sha256= fragments,
data-requires-python and PEP 658 data-core-metadata) and SITE_DIR/files/<wheel> (+ .metadata),
then serves SITE_DIR over HTTP/1.1 with keep-alive on a free port, written to PORT_FILE.
Responses carry Cache-Control like PyPI's (pages 10 minutes, files a year) and Last-Modified,
so pip's and uv's HTTP caches work as they do against PyPI.
"""

import hashlib
import html
import http.server
import os
import re
import shutil
import sys
import zipfile
from email.parser import HeaderParser


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def build(wheels, site):
    shutil.rmtree(site, ignore_errors=True)
    files = os.path.join(site, "files")
    os.makedirs(files)
    projects = {}
    for filename in sorted(os.listdir(wheels)):
        if not filename.endswith(".whl"):
            continue
        src = os.path.join(wheels, filename)
        shutil.copyfile(src, os.path.join(files, filename))
        with open(src, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        with zipfile.ZipFile(src) as z:
            name = next(n for n in z.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
            metadata = z.read(name)
        with open(os.path.join(files, filename + ".metadata"), "wb") as f:
            f.write(metadata)
        headers = HeaderParser().parsestr(metadata.decode("utf-8", "replace"))
        anchor = f'<a href="../../files/{filename}#sha256={sha}"'
        if headers.get("Requires-Python"):
            anchor += f' data-requires-python="{html.escape(headers["Requires-Python"])}"'
        meta_sha = hashlib.sha256(metadata).hexdigest()
        anchor += f' data-core-metadata="sha256={meta_sha}" data-dist-info-metadata="sha256={meta_sha}"'
        anchor += f">{filename}</a><br/>"
        projects.setdefault(normalize(filename.split("-")[0]), []).append(anchor)
    root = ['<!DOCTYPE html><html><head><meta name="pypi:repository-version" content="1.0"></head><body>']
    for project, anchors in sorted(projects.items()):
        page = os.path.join(site, "simple", project)
        os.makedirs(page)
        with open(os.path.join(page, "index.html"), "w") as f:
            f.write('<!DOCTYPE html><html><head><meta name="pypi:repository-version" content="1.0">')
            f.write(f"<title>Links for {project}</title></head><body>\n")
            f.write("\n".join(anchors))
            f.write("\n</body></html>\n")
        root.append(f'<a href="{project}/">{project}</a>')
    root.append("</body></html>\n")
    with open(os.path.join(site, "simple", "index.html"), "w") as f:
        f.write("\n".join(root))


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, every keep-alive
    # answer would wait ~40 ms for the client's delayed ACK, which real indexes do not make
    # their clients do. Every tool is timed against the same server.
    disable_nagle_algorithm = True

    def end_headers(self):
        if self.path.startswith("/files/"):
            self.send_header("Cache-Control", "max-age=31536000, public, immutable")
        else:
            self.send_header("Cache-Control", "max-age=600, public")
        super().end_headers()

    def guess_type(self, path):
        if str(path).endswith(".whl"):
            return "application/octet-stream"
        return super().guess_type(path)

    def log_message(self, *args):
        pass


def main():
    wheels, site, port_file = (os.path.abspath(a) for a in sys.argv[1:4])
    build(wheels, site)
    os.chdir(site)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
