/**
 * What the NetworkPolicies of one namespace allow, evaluated the way Kubernetes defines it
 * (https://kubernetes.io/docs/concepts/services-networking/network-policies/): a pod selected by
 * a policy of a direction is isolated in that direction and admits only what some rule of
 * those policies allows; a connection needs the source's egress AND the destination's ingress.
 * Policies of other namespaces are out of scope: a peer outside the namespace is unrestricted on
 * its own side.
 */
import type { INetworkPolicy, Labels } from './objects.ts';
import { selects } from './objects.ts';

export interface PeerPort {
  name?: string;
  port: number;
  protocol: string;
}

/** A pod (in the namespace or elsewhere), or an address outside the cluster. */
export type Peer =
  | { kind: 'pod'; name: string; namespace: string; namespaceLabels: Labels; labels: Labels; ports: readonly PeerPort[] }
  | { kind: 'ip'; name: string; ip: string; ports: readonly PeerPort[] };

type Rule = NonNullable<NonNullable<INetworkPolicy['spec']>['ingress']>[number];
type RulePeer = NonNullable<Rule['from']>[number];
type RulePort = NonNullable<Rule['ports']>[number];

export function allowedFlows(namespace: string, policies: readonly INetworkPolicy[], peers: readonly Peer[]): Set<string> {
  const inNamespace = (peer: Peer) => peer.kind === 'pod' && peer.namespace === namespace;
  const flows = new Set<string>();
  for (const source of peers) {
    for (const destination of peers) {
      if (!inNamespace(source) && !inNamespace(destination)) continue;
      for (const port of destination.ports) {
        const egress = !inNamespace(source) || admits(namespace, policies, 'Egress', source, destination, port);
        const ingress = !inNamespace(destination) || admits(namespace, policies, 'Ingress', destination, source, port);
        if (egress && ingress) flows.add(`${source.name} -> ${destination.name}:${port.port}/${port.protocol}`);
      }
    }
  }
  return flows;
}

/** Whether `subject`'s policies of `direction` admit the connection with `other` on `port`. */
function admits(namespace: string, policies: readonly INetworkPolicy[], direction: 'Ingress' | 'Egress', subject: Peer, other: Peer, port: PeerPort): boolean {
  if (subject.kind !== 'pod') return true;
  const applying = policies.filter((policy) => policyTypes(policy).includes(direction) && selects(policy.spec?.podSelector, subject.labels));
  if (applying.length === 0) return true;
  // The destination's ports name the port: for ingress the subject's own, for egress the other's.
  const destination = direction === 'Ingress' ? subject : other;
  return applying.some((policy) => {
    const rules = (direction === 'Ingress' ? policy.spec?.ingress : policy.spec?.egress) ?? [];
    return rules.some((rule) => {
      const rulePeers = direction === 'Ingress' ? (rule as { from?: RulePeer[] }).from : (rule as { to?: RulePeer[] }).to;
      const peerOk = rulePeers === undefined || rulePeers.length === 0 || rulePeers.some((rulePeer) => matchesPeer(namespace, rulePeer, other));
      const portOk = rule.ports === undefined || rule.ports.length === 0 || rule.ports.some((rulePort) => matchesPort(rulePort, port, destination));
      return peerOk && portOk;
    });
  });
}

/** A policy without policyTypes is Ingress, plus Egress when it has egress rules. */
function policyTypes(policy: INetworkPolicy): string[] {
  return policy.spec?.policyTypes ?? ['Ingress', ...(policy.spec?.egress === undefined ? [] : ['Egress'])];
}

function matchesPeer(namespace: string, rulePeer: RulePeer, peer: Peer): boolean {
  if (rulePeer.ipBlock !== undefined) {
    if (peer.kind !== 'ip') return false;
    const { cidr, except = [] } = rulePeer.ipBlock;
    return inCidr(peer.ip, cidr) && !except.some((excluded) => inCidr(peer.ip, excluded));
  }
  if (peer.kind !== 'pod') return false;
  const namespaceOk =
    rulePeer.namespaceSelector === undefined ? peer.namespace === namespace : selects(rulePeer.namespaceSelector, peer.namespaceLabels);
  const podOk = rulePeer.podSelector === undefined || selects(rulePeer.podSelector, peer.labels);
  return namespaceOk && podOk;
}

function matchesPort(rulePort: RulePort, port: PeerPort, destination: Peer): boolean {
  if ((rulePort.protocol ?? 'TCP') !== port.protocol) return false;
  if (rulePort.port === undefined) return true;
  if (typeof rulePort.port === 'string') {
    // A named port is the destination pod's port of that name.
    return destination.kind === 'pod' && port.name === rulePort.port;
  }
  const end = rulePort.endPort ?? rulePort.port;
  return port.port >= rulePort.port && port.port <= end;
}

export function inCidr(ip: string, cidr: string): boolean {
  const [network = '', bitsText = '32'] = cidr.split('/');
  const bits = Number(bitsText);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return ((toNumber(ip) & mask) >>> 0) === ((toNumber(network) & mask) >>> 0);
}

/** The first host address of a CIDR: a representative of the addresses it admits. */
export function firstHost(cidr: string): string {
  const [network = ''] = cidr.split('/');
  return fromNumber(toNumber(network) + 1);
}

function toNumber(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((part) => !Number.isInteger(part) || part < 0 || part > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return parts.reduce((sum, part) => sum * 256 + part, 0);
}

function fromNumber(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}
