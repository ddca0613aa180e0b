/**
 * AccessControl: the two questions every adapter asks, answered in one place.
 * `authenticate` may be slow (password hashes, HTTP hooks) and is async; `authorize` sits on the
 * publish and subscribe paths and is synchronous. The default allows everything; the security
 * issue plugs in password files, ACLs and hooks behind this same interface.
 */
import type { Protocol } from './message.js';

export interface Credentials {
  readonly protocol: Protocol;
  readonly clientId: string;
  readonly username?: string;
  readonly password?: Buffer;
  readonly remoteAddress: string;
  readonly listener: string;
  /** Identity taken from a verified client certificate, when the listener uses one. */
  readonly certIdentity?: string;
}

export interface Identity {
  readonly clientId: string;
  readonly username?: string;
}

export type AuthResult =
  | { readonly ok: true; readonly identity: Identity }
  | { readonly ok: false; readonly reason: 'bad-credentials' | 'not-authorized' | 'banned' | 'unavailable' };

/** publish: send to a topic; subscribe: subscribe to a filter; read: receive a message on a topic. */
export type Action = 'publish' | 'subscribe' | 'read';

export interface AccessControl {
  authenticate(c: Credentials): Promise<AuthResult>;
  authorize(who: Identity, action: Action, topicOrFilter: string): boolean;
  /**
   * Whether deliveries through a subscription to `filter` must each be checked with 'read' (the
   * filter reaches topics the client may not read). Absent: never.
   */
  needsReadCheck?(who: Identity, filter: string): boolean;
}

export const allowAll: AccessControl = {
  authenticate: async (c) => {
    // A verified certificate's identity replaces the username (Mosquitto's use_identity_as_username).
    const username = c.certIdentity ?? c.username;
    return { ok: true, identity: username === undefined ? { clientId: c.clientId } : { clientId: c.clientId, username } };
  },
  authorize: () => true,
};
