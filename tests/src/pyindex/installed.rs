//! [`Package::installed`]: a wheel packed from a distribution installed in an interpreter's
//! environment (the zope.testrunner, setuptools... a test needs and cannot build itself),
//! served like any built package.

use std::ffi::OsStr;
use std::process::Command;

use super::Package;

/// Packs the installed distribution named on the command line into a wheel written to the
/// path after it, with a fresh `RECORD` (compiled files, `INSTALLER`, `REQUESTED` and
/// `direct_url.json` left out), and prints the name, the version, the wheel tags and the
/// `Requires-Dist`/`Requires-Python` lines, one field per line.
const PACK: &str = r#"
import base64, hashlib, importlib.metadata as md, sys, zipfile
dist = md.distribution(sys.argv[1])
name, version = dist.metadata['Name'], dist.metadata['Version']
skip = ('INSTALLER', 'REQUESTED', 'direct_url.json', 'RECORD')
record = []
with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as whl:
    for f in sorted(dist.files or (), key=str):
        path = str(f)
        if path.startswith('..') or '__pycache__' in path or path.endswith('.pyc'):
            continue
        if '.dist-info/' in path and path.rsplit('/', 1)[1] in skip:
            continue
        data = dist.locate_file(f).read_bytes()
        whl.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=')
        record.append('%s,sha256=%s,%d' % (path, digest.decode(), len(data)))
    info = [str(f).split('/')[0] for f in dist.files if str(f).endswith('.dist-info/METADATA')][0]
    record.append(info + '/RECORD,,')
    whl.writestr(zipfile.ZipInfo(info + '/RECORD', (1980, 1, 1, 0, 0, 0)), '\n'.join(record) + '\n')
wheel = dist.read_text('WHEEL') or ''
tags = [l.split(':', 1)[1].strip() for l in wheel.splitlines() if l.startswith('Tag:')]
print(name); print(version); print(' '.join(tags) or 'py3-none-any')
for line in dist.metadata.get_all('Requires-Dist') or ():
    print('requires', line)
if dist.metadata['Requires-Python']:
    print('python', dist.metadata['Requires-Python'])
"#;

impl Package {
    /// The distribution `name` installed where `python` finds it, packed into a wheel with
    /// its own files and tags; its `Requires-Dist` and `Requires-Python` are the package's.
    /// Panics when the interpreter does not have it.
    pub fn installed(python: impl AsRef<OsStr>, name: &str) -> Package {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let wheel = dir.path().join("packed.whl");
        let out = Command::new(python.as_ref())
            .args(["-I", "-c", PACK, name])
            .arg(&wheel)
            .output()
            .unwrap_or_else(|e| panic!("run {:?}: {e}", python.as_ref()));
        assert!(
            out.status.success(),
            "packing the installed {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines();
        let (Some(project), Some(version), Some(tags)) = (lines.next(), lines.next(), lines.next())
        else {
            panic!("packing the installed {name} printed {text:?}");
        };
        let tags: Vec<&str> = tags.split_whitespace().collect();
        let bytes = std::fs::read(&wheel).expect("the packed wheel");
        let mut package = Package::new(project, version)
            .wheel_tags(&tags)
            .wheel_override(bytes);
        for line in lines {
            if let Some(req) = line.strip_prefix("requires ") {
                package = package.requires(req);
            } else if let Some(spec) = line.strip_prefix("python ") {
                package = package.requires_python(spec);
            }
        }
        package
    }
}
