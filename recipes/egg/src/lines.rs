//! A child process spoken to in JSON lines: requests on its stdin, answers on its stdout,
//! its stderr kept for the error when it ends without answering. Each answer must come
//! within a timeout; dropped, the process is killed. The develop hooks (`develop.rs`) and
//! the Python recipe bridge (`bridge.rs`) are such processes.

use std::io::Write;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Why no answer came.
pub enum NoAnswer {
    /// The timeout passed; the process has been killed.
    Timeout,
    /// The process ended (or closed its stdout): its exit status (`None`: killed after
    /// the timeout) and the end of its stderr.
    Ended {
        status: Option<ExitStatus>,
        tail: String,
    },
}

pub struct LineProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    answers: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    timeout: Duration,
}

impl LineProcess {
    /// Starts `command` with its three streams piped.
    pub fn start(mut command: Command, timeout: Duration) -> std::io::Result<LineProcess> {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let Some(out) = stdout else { return };
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut err = child.stderr.take();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(s) = err.as_mut() {
                use std::io::Read;
                let _ = s.read_to_string(&mut text);
            }
            text
        });
        Ok(LineProcess {
            child,
            stdin,
            answers,
            stderr: Some(stderr),
            timeout,
        })
    }

    /// Sends one line (a newline is added). A process that no longer reads is noticed by
    /// the next [`receive`](LineProcess::receive).
    pub fn send(&mut self, line: &str) {
        let sent = self
            .stdin
            .as_mut()
            .is_some_and(|s| writeln!(s, "{line}").and_then(|()| s.flush()).is_ok());
        if !sent {
            self.stdin = None;
        }
    }

    /// The next line the process writes.
    pub fn receive(&mut self) -> std::result::Result<String, NoAnswer> {
        let reply = if self.stdin.is_some() {
            self.answers.recv_timeout(self.timeout)
        } else {
            Err(mpsc::RecvTimeoutError::Disconnected)
        };
        match reply {
            Ok(line) => Ok(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                Err(NoAnswer::Timeout)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.ended()),
        }
    }

    /// How long an answer may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn ended(&mut self) -> NoAnswer {
        drop(self.stdin.take());
        let status = wait_bounded(&mut self.child, self.timeout);
        let err = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let tail: Vec<&str> = err.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        NoAnswer::Ended {
            status,
            tail: tail.join("\n"),
        }
    }
}

impl Drop for LineProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` at most `timeout`, then kills it; its status if it exited by itself.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}
