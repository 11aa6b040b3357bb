//! A server on a free loopback port with a thread and tokio runtime of its own, so it
//! outlives the test's runtime and answers while the test blocks (on kubectl, say); stopped,
//! and its thread joined, on drop.

use std::future::Future;
use std::net::SocketAddr;

use futures::future::BoxFuture;

/// A running background server.
pub(crate) struct Background {
    /// Where it listens (`127.0.0.1:PORT`).
    pub(crate) addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Binds a free loopback port and runs `serve(listener, stop)` on its own thread and
    /// runtime; `stop` completes when the server is dropped.
    pub(crate) fn start<F, Fut>(serve: F) -> Background
    where
        F: FnOnce(tokio::net::TcpListener, BoxFuture<'static, ()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("nonblocking: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("runtime: {e}"));
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .unwrap_or_else(|e| panic!("listener: {e}"));
                let stop: BoxFuture<'static, ()> = Box::pin(async move {
                    let _ = stop.await;
                });
                serve(listener, stop).await;
            });
        });
        Background {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
