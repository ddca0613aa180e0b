/**
 * MQTT 5 properties (section 2.2.2): decoded into one flat object, with the checks mqtt-packet does
 * not make: which property may appear in which packet, duplicates, value ranges. User properties
 * keep their order ([MQTT-3.3.2-18]); mqtt-packet would group them by name.
 */
import type { UserProperty } from '../../src/core/message.js';
import { MqttError, ReasonCode } from './reason-codes.js';
import type { Reader } from './reader.js';

export interface Properties {
  payloadFormat?: number;
  messageExpiry?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  subscriptionId?: number;
  sessionExpiry?: number;
  assignedClientId?: string;
  serverKeepAlive?: number;
  authMethod?: string;
  authData?: Buffer;
  requestProblemInfo?: number;
  willDelay?: number;
  requestResponseInfo?: number;
  responseInfo?: string;
  serverReference?: string;
  reasonString?: string;
  receiveMaximum?: number;
  topicAliasMaximum?: number;
  topicAlias?: number;
  maximumQos?: number;
  retainAvailable?: number;
  user?: UserProperty[];
  maximumPacketSize?: number;
  wildcardAvailable?: number;
  subscriptionIdsAvailable?: number;
  sharedAvailable?: number;
}

export const Prop = {
  PayloadFormatIndicator: 0x01,
  MessageExpiryInterval: 0x02,
  ContentType: 0x03,
  ResponseTopic: 0x08,
  CorrelationData: 0x09,
  SubscriptionIdentifier: 0x0b,
  SessionExpiryInterval: 0x11,
  AssignedClientIdentifier: 0x12,
  ServerKeepAlive: 0x13,
  AuthenticationMethod: 0x15,
  AuthenticationData: 0x16,
  RequestProblemInformation: 0x17,
  WillDelayInterval: 0x18,
  RequestResponseInformation: 0x19,
  ResponseInformation: 0x1a,
  ServerReference: 0x1c,
  ReasonString: 0x1f,
  ReceiveMaximum: 0x21,
  TopicAliasMaximum: 0x22,
  TopicAlias: 0x23,
  MaximumQoS: 0x24,
  RetainAvailable: 0x25,
  UserProperty: 0x26,
  MaximumPacketSize: 0x27,
  WildcardSubscriptionAvailable: 0x28,
  SubscriptionIdentifierAvailable: 0x29,
  SharedSubscriptionAvailable: 0x2a,
} as const;

/** Where a property list sits: the packets a client may send, plus the will properties. */
export type PropertyContext = 'connect' | 'will' | 'publish' | 'ack' | 'subscribe' | 'unsubscribe' | 'disconnect' | 'auth';

const P = Prop;
const ALLOWED: Record<PropertyContext, ReadonlySet<number>> = {
  connect: new Set([
    P.SessionExpiryInterval,
    P.ReceiveMaximum,
    P.MaximumPacketSize,
    P.TopicAliasMaximum,
    P.RequestResponseInformation,
    P.RequestProblemInformation,
    P.UserProperty,
    P.AuthenticationMethod,
    P.AuthenticationData,
  ]),
  will: new Set([
    P.WillDelayInterval,
    P.PayloadFormatIndicator,
    P.MessageExpiryInterval,
    P.ContentType,
    P.ResponseTopic,
    P.CorrelationData,
    P.UserProperty,
  ]),
  // [MQTT-3.3.4-6]: a client never sends a Subscription Identifier in PUBLISH.
  publish: new Set([
    P.PayloadFormatIndicator,
    P.MessageExpiryInterval,
    P.TopicAlias,
    P.ResponseTopic,
    P.CorrelationData,
    P.UserProperty,
    P.ContentType,
  ]),
  ack: new Set([P.ReasonString, P.UserProperty]),
  subscribe: new Set([P.SubscriptionIdentifier, P.UserProperty]),
  unsubscribe: new Set([P.UserProperty]),
  disconnect: new Set([P.SessionExpiryInterval, P.ReasonString, P.UserProperty, P.ServerReference]),
  auth: new Set([P.AuthenticationMethod, P.AuthenticationData, P.ReasonString, P.UserProperty]),
};

const EMPTY: Properties = Object.freeze({}) as Properties;

function protocolError(msg: string): MqttError {
  return new MqttError(ReasonCode.ProtocolError, msg);
}

function flag(r: Reader, name: string): number {
  const v = r.u8();
  if (v > 1) throw protocolError(`${name} must be 0 or 1`);
  return v;
}

/** Reads a property length and list at the reader's position. */
export function readProperties(r: Reader, ctx: PropertyContext): Properties {
  const len = r.varint();
  if (len === 0) return EMPTY;
  const end = r.pos + len;
  if (end > r.end) throw new MqttError(ReasonCode.MalformedPacket, 'property length exceeds packet');
  const allowed = ALLOWED[ctx];
  const out: Properties = {};
  const seen = new Set<number>();
  while (r.pos < end) {
    const id = r.varint();
    if (!allowed.has(id)) {
      throw isKnown(id)
        ? protocolError(`property 0x${id.toString(16)} not allowed in ${ctx}`)
        : new MqttError(ReasonCode.MalformedPacket, `unknown property 0x${id.toString(16)}`);
    }
    if (id !== P.UserProperty) {
      if (seen.has(id)) throw protocolError(`property 0x${id.toString(16)} appears twice`);
      seen.add(id);
    }
    switch (id) {
      case P.PayloadFormatIndicator:
        out.payloadFormat = flag(r, 'Payload Format Indicator');
        break;
      case P.MessageExpiryInterval:
        out.messageExpiry = r.u32();
        break;
      case P.ContentType:
        out.contentType = r.utf8();
        break;
      case P.ResponseTopic:
        out.responseTopic = r.utf8();
        break;
      case P.CorrelationData:
        out.correlationData = r.binary();
        break;
      case P.SubscriptionIdentifier:
        out.subscriptionId = r.varint();
        if (out.subscriptionId === 0) throw protocolError('Subscription Identifier 0'); // [MQTT-3.8.2-?]
        break;
      case P.SessionExpiryInterval:
        out.sessionExpiry = r.u32();
        break;
      case P.AuthenticationMethod:
        out.authMethod = r.utf8();
        break;
      case P.AuthenticationData:
        out.authData = r.binary();
        break;
      case P.RequestProblemInformation:
        out.requestProblemInfo = flag(r, 'Request Problem Information');
        break;
      case P.WillDelayInterval:
        out.willDelay = r.u32();
        break;
      case P.RequestResponseInformation:
        out.requestResponseInfo = flag(r, 'Request Response Information');
        break;
      case P.ServerReference:
        out.serverReference = r.utf8();
        break;
      case P.ReasonString:
        out.reasonString = r.utf8();
        break;
      case P.ReceiveMaximum:
        out.receiveMaximum = r.u16();
        if (out.receiveMaximum === 0) throw protocolError('Receive Maximum 0'); // [MQTT-3.1.2-?]
        break;
      case P.TopicAliasMaximum:
        out.topicAliasMaximum = r.u16();
        break;
      case P.TopicAlias:
        out.topicAlias = r.u16();
        break;
      case P.UserProperty: {
        const name = r.utf8();
        const value = r.utf8();
        (out.user ??= []).push([name, value]);
        break;
      }
      case P.MaximumPacketSize:
        out.maximumPacketSize = r.u32();
        if (out.maximumPacketSize === 0) throw protocolError('Maximum Packet Size 0');
        break;
    }
  }
  if (r.pos !== end) throw new MqttError(ReasonCode.MalformedPacket, 'property overruns its length');
  return out;
}

function isKnown(id: number): boolean {
  for (const v of Object.values(Prop)) if (v === id) return true;
  return false;
}
