vcl 4.1;

# Varnish in front of the API (docs/http-caching.md, "A shared cache in front"), run with
# SURROGATE_KEY_HEADER=xkey and PURGE_ADAPTER=varnish on the server:
#
# - Caches anonymous GET /graphql responses by URL, for the `Surrogate-Control: max-age=N` the
#   server sends, and only those: a response without it (a mutation, a private or uncacheable
#   one, one whose dependencies the server does not know) is never cached here.
# - Indexes each cached object by its `xkey` header (space-separated keys: hashes of the
#   entities, fields and tags the response read), and removes every object of the keys named by
#   a `PURGE` with an `xkey-purge` header, which the server sends after each invalidation.
# - A request with an Authorization header is passed: its response may be the caller's own.
#
# Run: varnishd -f /path/to/deploy/varnish/default.vcl ... (backend.vcl, included below from
# the same directory, names the API server: edit it, or copy both files and write your own).

import std;
import xkey;

include "./backend.vcl";

# Who may purge: the API servers. Widen it to their addresses when they run elsewhere.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (!req.http.xkey-purge) {
            return (synth(400, "PURGE needs an xkey-purge header"));
        }
        set req.http.x-purged = xkey.purge(req.http.xkey-purge);
        return (synth(200, "Purged"));
    }
    if (req.url !~ "^/graphql(\?|$)") {
        return (pass);
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    if (req.http.Authorization || req.http.Cookie) {
        return (pass);
    }
    return (hash);
}

sub vcl_backend_response {
    # Only what the server marks for a shared cache, for as long as it says.
    if (bereq.url ~ "^/graphql(\?|$)" && beresp.status == 200 && beresp.http.Surrogate-Control ~ "(^|,)\s*max-age=[0-9]+" && beresp.http.xkey) {
        set beresp.ttl = std.duration(regsub(beresp.http.Surrogate-Control, "^.*max-age=([0-9]+).*$", "\1") + "s", 0s);
        set beresp.grace = 0s;
        unset beresp.http.Set-Cookie;
        return (deliver);
    }
    set beresp.uncacheable = true;
    set beresp.ttl = 120s;
    return (deliver);
}

sub vcl_synth {
    if (req.method == "PURGE" && resp.status == 200) {
        set resp.http.x-purged = req.http.x-purged;
    }
}

sub vcl_deliver {
    # For the cache only: clients see neither the keys nor the surrogate lifetime.
    unset resp.http.xkey;
    unset resp.http.Surrogate-Control;
    if (obj.uncacheable) {
        set resp.http.X-Cache = "PASS";
    } elsif (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
