import kafkajs from 'kafkajs';
import type { PartitionAssigner } from 'kafkajs';

const { AssignerProtocol } = kafkajs;

/** Protocol name of {@link subscriptionAwareAssigner} in the group's join requests. */
export const SUBSCRIPTION_AWARE_ASSIGNER = 'OmniQueueRoundRobin';

/**
 * A round-robin partition assigner that gives each partition only to a member subscribed to its
 * topic, like the Java client's assigners do.
 *
 * kafkajs' own `RoundRobinAssigner` spreads every subscribed topic over every member of the group,
 * whatever each member subscribed to. OmniQueue maps a group name to one Kafka consumer group, and
 * the same group name may consume several topics (`subscribe('a', h, 'billing')` and
 * `subscribe('b', h, 'billing')`): with kafkajs' assigner the consumer of `a` could be handed the
 * partitions of `b`, which it never reads. kafkajs also passes the leader only its own topics, so
 * this assigner reads every member's subscription from its metadata. Consumers offer this assigner first and kafkajs'
 * round-robin second, so a group shared with plain kafkajs consumers still forms.
 */
export const subscriptionAwareAssigner: PartitionAssigner = ({ cluster }) => ({
  name: SUBSCRIPTION_AWARE_ASSIGNER,
  version: 0,
  async assign({ members }) {
    const subscribers = new Map<string, string[]>();
    for (const member of [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0))) {
      const metadata = AssignerProtocol.MemberMetadata.decode(member.memberMetadata);
      for (const topic of metadata?.topics ?? []) {
        let list = subscribers.get(topic);
        if (!list) subscribers.set(topic, (list = []));
        list.push(member.memberId);
      }
    }
    // kafkajs hands the leader only its own topics: the group's topics are those of every member.
    const topics = [...subscribers.keys()].sort();
    await cluster.addMultipleTargetTopics(topics);
    const assignment = new Map<string, Record<string, number[]>>();
    let turn = 0;
    for (const topic of topics) {
      const candidates = subscribers.get(topic);
      if (!candidates || candidates.length === 0) continue;
      const partitions = cluster
        .findTopicPartitionMetadata(topic)
        .map((metadata) => metadata.partitionId)
        .sort((a, b) => a - b);
      for (const partition of partitions) {
        const memberId = candidates[turn++ % candidates.length]!;
        let topicsOfMember = assignment.get(memberId);
        if (!topicsOfMember) assignment.set(memberId, (topicsOfMember = {}));
        (topicsOfMember[topic] ??= []).push(partition);
      }
    }
    return members.map(({ memberId }) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: assignment.get(memberId) ?? {}, userData: Buffer.alloc(0) }),
    }));
  },
  protocol({ topics }) {
    return { name: SUBSCRIPTION_AWARE_ASSIGNER, metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }) };
  },
});
