//! Routing decisions per second with 1,000 agents busy and 10,000 interactions waiting.
//!
//! Each iteration is one decision cycle: an agent's contact ends, the ACD picks the best
//! waiting interaction for that agent (the routing decision), the agent answers, and a new
//! interaction arrives so 10,000 stay waiting. `cargo bench -p mod_acd --bench routing`
//! prints the figure as `thrpt` (decisions per second); the goal is >= 10,000.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mod_acd::{
    Acd, AcdConfig, AgentConfig, AgentId, Channel, Input, Interaction, InteractionId, Output,
    QueueConfig, SkillRequirement, Strategy, Tier,
};
use std::hint::black_box;

const AGENTS: u32 = 1_000;
const WAITING: u64 = 10_000;

struct Bench {
    acd: Acd,
    now: u64,
    next_id: u64,
    on_contact: Vec<Option<InteractionId>>,
}

impl Bench {
    fn new(strategy: Strategy) -> Self {
        let config = AcdConfig {
            queues: vec![QueueConfig {
                strategy,
                ..QueueConfig::new("q")
            }],
            agents: (0..AGENTS)
                .map(|i| AgentConfig {
                    skills: vec![("en".into(), 50 + (i % 51) as u8)],
                    tiers: vec![Tier::new("q", 1 + i % 3, i)],
                    ..AgentConfig::new(AgentId(i))
                })
                .collect(),
        };
        let mut bench = Bench {
            acd: Acd::new(config, 1).expect("valid"),
            now: 0,
            next_id: 0,
            on_contact: vec![None; AGENTS as usize],
        };
        for _ in 0..(WAITING + u64::from(AGENTS)) {
            bench.arrive();
        }
        for i in 0..AGENTS {
            bench.now += 1;
            bench
                .acd
                .handle_input(bench.now, Input::Login(AgentId(i)))
                .expect("known agent");
            bench.answer_offers();
        }
        assert!(bench.on_contact.iter().all(Option::is_some));
        bench
    }

    fn arrive(&mut self) {
        self.next_id += 1;
        let mut it = Interaction::new(InteractionId(self.next_id), Channel::Voice, "q", "caller");
        it.priority = (self.next_id % 3) as i32;
        it.skills = vec![SkillRequirement {
            skill: "en".into(),
            level: (self.next_id % 50) as u8,
        }];
        self.acd
            .handle_input(self.now, Input::Arrive(it))
            .expect("queue exists");
        self.answer_offers();
    }

    fn answer_offers(&mut self) {
        while let Some(out) = self.acd.poll_output() {
            if let Output::Offer {
                interaction, agent, ..
            } = out
            {
                self.acd
                    .handle_input(self.now, Input::OfferAnswered { interaction, agent })
                    .expect("live offer");
                self.on_contact[agent.0 as usize] = Some(interaction);
            }
        }
    }

    /// One routing decision.
    fn step(&mut self, agent: usize) {
        self.now += 1;
        if let Some(ended) = self.on_contact[agent].take() {
            self.acd
                .handle_input(self.now, Input::ContactEnded(ended))
                .expect("on contact");
        }
        self.answer_offers();
        self.arrive();
    }
}

fn routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing");
    group.throughput(Throughput::Elements(1));
    for strategy in [
        Strategy::LongestIdleAgent,
        Strategy::SkillsBased,
        Strategy::RoundRobin,
    ] {
        let mut bench = Bench::new(strategy);
        let mut agent = 0;
        group.bench_function(format!("{strategy:?}/1000-agents/10000-waiting"), |b| {
            b.iter(|| {
                bench.step(agent);
                agent = (agent + 1) % AGENTS as usize;
                black_box(bench.acd.interaction_count())
            })
        });
        assert_eq!(bench.acd.waiting("q").len() as u64, WAITING);
    }
    // A full routing pass (what every tick does: offer expiry, wrap-up ends, maximum wait,
    // then routing over every queue), all agents busy and 10,000 waiting.
    let mut bench = Bench::new(Strategy::LongestIdleAgent);
    group.bench_function("tick/1000-agents/10000-waiting", |b| {
        b.iter(|| {
            bench.now += 1;
            bench
                .acd
                .handle_input(bench.now, Input::Tick)
                .expect("tick");
            bench.answer_offers();
        })
    });
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
