//! A real Python package index on 127.0.0.1, serving small distributions built by the tests.
//!
//! Tests describe packages with [`Package`], and [`Index::serve`] builds every file into a
//! temporary folder and serves them over HTTP, so no test ever reaches the internet.
//!
//! ```no_run
//! use rbuildout_tests::pyindex::{Fault, Index, Package};
//! let index = Index::serve(&[
//!     Package::new("alpha", "1.0")
//!         .requires("beta>=2")
//!         .module("alpha/__init__.py", "def main():\n    print('alpha')\n")
//!         .entry_point("console_scripts", "alpha", "alpha:main"),
//!     Package::new("beta", "2.0").requires_python(">=3.8").extra("fast", &["gamma"]),
//! ]);
//! let url = index.url(); // "http://127.0.0.1:PORT/simple/"
//! index.set_fault(Fault::Truncate);
//! ```
//!
//! # The distributions
//!
//! - **Wheels** (PEP 427): `<dist>-<version>-<tag>.whl`, `<dist>` being the PEP 503 name with
//!   `_` for `-` (`Foo.Bar` → `foo_bar`). One wheel per tag of [`Package::wheel_tags`]
//!   (default `py3-none-any`), all with the same content: the modules given with
//!   [`Package::module`] (or, when none is given, `<dist>/__init__.py` defining
//!   `__version__`), then `<dist>-<version>.dist-info/` with `METADATA` (metadata 2.1: `Name`,
//!   `Version`, `Requires-Python`, `Requires-Dist`, `Provides-Extra`), `WHEEL`
//!   (`Root-Is-Purelib: true` for `*-none-any` tags, else `false`), `entry_points.txt` (when
//!   there are entry points),
//!   `top_level.txt` and `RECORD` (`sha256=` urlsafe base64 without padding, sizes; its own
//!   line is `RECORD,,`). Members are deflated and dated 1980-01-01, so the bytes and hashes
//!   of a package are the same on every run.
//! - **Extras**: `.extra("fast", &["gamma"])` writes `Provides-Extra: fast` and
//!   `Requires-Dist: gamma; extra == "fast"` (a requirement with its own marker `m` becomes
//!   `(m) and extra == "fast"`). Requirements and markers are otherwise written verbatim.
//! - **Sdists** (with [`Package::with_sdist`] or [`Package::sdist_only`]):
//!   `<dist>-<version>.tar.gz` holding `<dist>-<version>/` with `PKG-INFO`, the modules,
//!   `entry_points.txt`, and a `pyproject.toml` whose build backend is a small PEP 517
//!   backend *inside the sdist* (`backend-path = ["."]`, `requires = []`), written with the
//!   standard library only. So the sdist builds offline with `pip wheel --no-deps` with or
//!   without `--no-build-isolation` (this Python's setuptools 65 cannot build wheels without
//!   the `wheel` package, which is not installed and must not be downloaded), and the wheel it
//!   builds has the same content as the wheel this module builds.
//! - **Broken archives**: [`Package::malicious_member`] adds a member with any name (such as
//!   `../escape.txt` or `/etc/x`) to the wheels; [`Package::duplicate_member`] a second member
//!   of a name; [`Package::mismatched_member`] a member whose local header names it otherwise
//!   than the central directory; [`Package::symlink_member`] a symbolic link;
//!   [`Package::wheel_override`] serves arbitrary bytes as the wheel.
//! - **Other members**: [`Package::module`] takes any path, so `<dist>-<version>.data/scripts/x`
//!   (with a `#!python` first line) or `<dist>-<version>.data/purelib/...` members are written
//!   the same way (and listed in RECORD).
//! - **Yanked** files (PEP 592): [`Package::yanked`] / [`Package::yanked_because`].
//! - **Lying metadata**: [`Package::metadata_says`] makes `METADATA` name another project or
//!   version than the file names.
//!
//! # The endpoints
//!
//! | path | answer |
//! |---|---|
//! | `/simple/` | the root listing: PEP 503 HTML (`<a href="name/">Name</a>`), or PEP 691 JSON `{"meta": {"api-version": "1.0"}, "projects": [{"name": ...}]}` |
//! | `/simple/<name>/` | the project page (below); a name that is not PEP 503 normalised, or a missing trailing `/`, is redirected (301) to `/simple/<normalised>/`; an unknown project is 404 |
//! | `/files/<file>` | a wheel or sdist |
//! | `/files/<wheel>.metadata` | the wheel's `METADATA` (PEP 658 / PEP 714) |
//! | anything else | 404; methods other than GET and HEAD get 405 |
//!
//! The project page lists every file of every version of the project, in the order the
//! packages were given. HTML (PEP 503): one anchor per file,
//! `<a href="../../files/<file>#sha256=<hex>" data-requires-python="&gt;=3.8"
//! data-yanked="reason" data-core-metadata="sha256=<hex>"
//! data-dist-info-metadata="sha256=<hex>">file</a>` — the href is *relative* to the page, as
//! PEP 503 allows; the metadata attributes only for wheels, `data-requires-python` only when
//! set (HTML-escaped), `data-yanked` only when yanked (empty without a reason). JSON (PEP 691):
//! `{"meta": {"api-version": "1.0"}, "name": "<normalised>", "files": [{"filename", "url"
//! (absolute), "hashes": {"sha256"}, "requires-python" (only when set), "yanked" (false, true
//! or the reason), "core-metadata" and "dist-info-metadata" ({"sha256"} for wheels, false for
//! sdists)}]}`.
//!
//! Content negotiation (PEP 691): JSON (`application/vnd.pypi.simple.v1+json`) when the
//! `Accept` header names `application/vnd.pypi.simple.v1+json` or
//! `application/vnd.pypi.simple.latest+json` with a q-value greater than or equal to the best
//! HTML one (`text/html`, `application/vnd.pypi.simple.v1+html`, `…latest+html`, `text/*`,
//! `*/*`); otherwise HTML, as `text/html; charset=utf-8` (or
//! `application/vnd.pypi.simple.v1+html` when that was asked for by name). A wildcard alone
//! therefore gets HTML. The `?format=<content type>` query parameter of PEP 691 overrides the
//! header. Responses carry `Vary: Accept`.
//!
//! HTTP: HTTP/1.1, one thread per connection, one request per connection (every response has
//! `Content-Length` and `Connection: close`). HEAD answers the headers of GET without the
//! body. The server thread stops when the [`Index`] is dropped; the built files live in a
//! temporary folder owned by the [`Index`] ([`Index::files_dir`], usable as a find-links
//! folder: it holds the wheels and sdists, not the `.metadata` files).
//!
//! [`Index::require_auth`] makes every request need HTTP Basic auth (else `401` with
//! `WWW-Authenticate`); [`Index::authorizations`] returns the `Authorization` header of
//! every request. [`Index::set_files_base`] makes the project pages link the files on
//! another server (absolute URLs). [`Index::stall_file`] makes downloads of one file wait.
//!
//! [`Index::requests`] returns every request target (path and query) seen so far, in order,
//! redirects and failures included.
//!
//! # Faults
//!
//! [`Index::set_fault`] changes how the following requests are answered:
//!
//! - [`Fault::Status500`]: every request gets `500 Internal Server Error`.
//! - [`Fault::Garbage`]: the `/simple/` pages (root and projects) are `200` with the
//!   negotiated content type and a body that is neither HTML nor JSON (bytes `0x00`, `0xff`,
//!   unbalanced brackets); files are served normally.
//! - [`Fault::Truncate`]: wheel and sdist downloads send the full `Content-Length` but only
//!   the first half of the bytes, then close the connection. `.metadata` files are whole.
//! - [`Fault::WrongHash`]: the pages (HTML and JSON) advertise a wrong sha256 for every
//!   wheel and sdist (the digest of other bytes); the files themselves and the core-metadata
//!   hashes are right.
//!
//! # The code
//!
//! [`builder`] turns a [`Package`] into wheel, sdist and metadata bytes; [`server`] is the
//! HTTP index serving them; [`encoders`] holds the small encodings both use (PEP 503 names,
//! hex, base64, HTML escaping, percent-decoding).

pub mod builder;
pub mod encoders;
mod installed;
pub mod server;

pub use builder::Package;
pub use encoders::{hex, normalize, urlsafe_b64_nopad};
pub use server::{Fault, Index};

#[cfg(test)]
mod tests;
