//! Serving HTTPS: rustls server config, self-signed fallback certificate, certificate reload, HTTP/1.1 and HTTP/2.
