# The API server Varnish sends misses to; default.vcl includes this file from its own directory.
# Edit it to point Varnish at another address (the tests write their own beside a copy of default.vcl).
backend default {
    .host = "127.0.0.1";
    .port = "4000";
}
