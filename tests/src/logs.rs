//! TRACE log capture for tests that assert what logs contain and never contain.
//!
//! One TRACE-level fmt subscriber is installed as the global default (a scoped one can
//! miss events of callsites another test thread registered first). It writes each
//! event to the capture of the thread that emitted it, if that thread is capturing
//! ([`LogCapture::install`]: exact, for counting lines), and to one process-wide buffer
//! once [`LogCapture::everything`] was called (for leak checks across threads).

use std::cell::RefCell;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, Once, OnceLock};

/// Captured log text.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURING: RefCell<Option<LogCapture>> = const { RefCell::new(None) };
}

static EVERYTHING: OnceLock<LogCapture> = OnceLock::new();

/// Stops the capture on this thread when dropped.
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURING.with(|c| c.borrow_mut().take());
    }
}

fn install_subscriber() {
    static GLOBAL: Once = Once::new();
    GLOBAL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| Writer)
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in a test binary that captures logs");
    });
}

fn locked(buffer: &Mutex<Vec<u8>>) -> MutexGuard<'_, Vec<u8>> {
    buffer
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LogCapture {
    /// Captures what this thread logs until the guard is dropped. Use a
    /// current-thread runtime so that spawned tasks log on the test's thread.
    pub fn install() -> (LogCapture, CaptureGuard) {
        install_subscriber();
        let capture = LogCapture::default();
        CAPTURING.with(|c| *c.borrow_mut() = Some(capture.clone()));
        (capture, CaptureGuard(()))
    }

    /// Everything every thread of this process logs from now on.
    pub fn everything() -> LogCapture {
        install_subscriber();
        EVERYTHING.get_or_init(LogCapture::default).clone()
    }

    /// The text captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&locked(&self.0)).into_owned()
    }

    /// The WARN lines captured so far.
    pub fn warnings(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| line.contains(" WARN "))
            .map(str::to_owned)
            .collect()
    }
}

struct Writer;

impl io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        CAPTURING.with(|c| {
            if let Some(capture) = &*c.borrow() {
                locked(&capture.0).extend_from_slice(buf);
            }
        });
        if let Some(everything) = EVERYTHING.get() {
            locked(&everything.0).extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
