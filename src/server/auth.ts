import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import type { IncomingMessage } from "node:http";

/**
 * Who may read the dashboard. Without a token (loopback binds only) anyone on this machine
 * may, but only through a loopback Host name, which stops DNS-rebinding pages from reading
 * the API through the user's browser. With a token every request must carry it:
 * `Authorization: Bearer T`, `X-Ckptguard-Token: T`, the cookie, or `?token=T` once (then
 * swapped for an HttpOnly SameSite=Strict cookie and a redirect that drops it from the URL
 * and the browser history).
 */

export type AuthOutcome =
  | { kind: "allow" }
  | { kind: "deny"; status: 401 | 403; code: string; message: string }
  /** A valid `?token=`: set the cookie and redirect to `location`. */
  | { kind: "set-cookie"; cookie: string; location: string };

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (bare === "localhost" || bare.endsWith(".localhost")) return true;
  if (isIP(bare) === 4) return bare.startsWith("127.");
  return bare === "::1" || bare === "0:0:0:0:0:0:0:1" || bare.startsWith("::ffff:127.");
}

/** Equal tokens, compared in time independent of where they differ (hashing first equalises lengths). */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

export class Auth {
  /** The bound port, once known: cookies are not scoped by port, so the cookie's name carries it. */
  port = 0;

  constructor(private readonly token: string | undefined) {}

  get cookieName(): string {
    return `ckptguard_token_${this.port}`;
  }

  check(req: IncomingMessage, url: URL): AuthOutcome {
    if (this.token === undefined) {
      const host = (req.headers.host ?? "").replace(/:\d+$/, "");
      return isLoopbackHost(host) ? { kind: "allow" } : { kind: "deny", status: 403, code: "FORBIDDEN_HOST", message: "only loopback Host names are served without --token" };
    }
    const queryToken = url.searchParams.get("token");
    if (queryToken !== null) {
      if (!tokensEqual(queryToken, this.token)) return deny();
      url.searchParams.delete("token");
      const cookie = `${this.cookieName}=${encodeURIComponent(this.token)}; HttpOnly; SameSite=Strict; Path=/`;
      return { kind: "set-cookie", cookie, location: `${url.pathname}${url.search}` };
    }
    const given = headerToken(req) ?? this.cookieToken(req);
    return given !== undefined && tokensEqual(given, this.token) ? { kind: "allow" } : deny();
  }

  private cookieToken(req: IncomingMessage): string | undefined {
    for (const part of (req.headers.cookie ?? "").split(";")) {
      const [name, ...rest] = part.trim().split("=");
      if (name !== this.cookieName) continue;
      try {
        return decodeURIComponent(rest.join("="));
      } catch {
        return undefined;
      }
    }
    return undefined;
  }
}

function headerToken(req: IncomingMessage): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
  if (bearer) return bearer[1]!.trim();
  const header = req.headers["x-ckptguard-token"];
  return typeof header === "string" ? header : undefined;
}

function deny(): AuthOutcome {
  return { kind: "deny", status: 401, code: "UNAUTHORIZED", message: "a valid token is required (Authorization: Bearer, X-Ckptguard-Token, or ?token=)" };
}
