//! An https server on 127.0.0.1 for the egg recipe's TLS tests: Python's http.server with a
//! certificate signed by a CA made here (known to no system store), serving a folder the
//! test fills and redirecting `/down/<rest>` to a given prefix followed by `<rest>`.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running server, killed when dropped.
pub struct TlsServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsServer {
    /// Makes the CA and the server's certificate, lets `fill` write the served folder, and
    /// starts the server; `redirect` is the prefix `/down/` redirects to.
    pub fn start(fill: impl FnOnce(&Path), redirect: &str) -> TlsServer {
        let dir = tempfile::tempdir().expect("tls dir");
        let d = dir.path();
        certificates(d);
        let www = d.join("www");
        std::fs::create_dir_all(&www).expect("www");
        fill(&www);
        let mut child = Command::new("python3")
            .args(["-c", SERVER])
            .arg(&www)
            .arg(d.join("srv.pem"))
            .arg(d.join("srv.key"))
            .arg(redirect)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the TLS server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        let port = line.trim().parse().expect("a port number");
        TlsServer { child, port, dir }
    }

    /// The CA certificate, for `SSL_CERT_FILE`.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

const SERVER: &str = "import http.server, ssl, sys, os\n\
    os.chdir(sys.argv[1])\n\
    target = sys.argv[4]\n\
    class H(http.server.SimpleHTTPRequestHandler):\n\
    \x20   def do_GET(self):\n\
    \x20       if self.path.startswith('/down/'):\n\
    \x20           self.send_response(302)\n\
    \x20           self.send_header('Location', target + self.path[6:])\n\
    \x20           self.send_header('Content-Length', '0')\n\
    \x20           self.end_headers()\n\
    \x20           return\n\
    \x20       return super().do_GET()\n\
    \x20   def log_message(self, *a):\n\
    \x20       pass\n\
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n\
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n\
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n\
    print(srv.server_address[1], flush=True)\n\
    srv.serve_forever()\n";

/// `ca.pem`/`ca.key` (a CA valid two days) and `srv.pem`/`srv.key` (127.0.0.1, signed by
/// it) in `dir`.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=rbuildout test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
