// SPDX-License-Identifier: Apache-2.0
// The Cedar side of bench/authz: reads the policy sets bench.c wrote
// (set-N.json), expresses each as Cedar (one permit per binding member, the
// role as an action group, the resource hierarchy as entity parents, IAM
// conditions as `when` clauses), and times cedar-wasm on the same allowed
// and denied requests. Policies are parsed once (preparsePolicySet); each
// decision passes only the request's entities, as a real deployment would.
// Usage: node cedar.js SET_JSON all|chain  (env CEDAR_BUDGET_MS: time per measurement,
// default 2000; CEDAR_WARMUP_MS: warm-up per measurement, default 500)
'use strict';

const fs = require('fs');
const path = require('path');

let cedar;
try {
    cedar = require('@cedar-policy/cedar-wasm/nodejs');
} catch (e) {
    const pkg = path.join(__dirname, 'package.json');
    console.error(`bench/authz: @cedar-policy/cedar-wasm is not installed (${e.code || e.message}).\n` +
        `Run "npm install" in ${__dirname} first (${pkg} pins the version).`);
    process.exit(111);
}

const BUDGET_MS = Number(process.env.CEDAR_BUDGET_MS || 2000);
const WARMUP_MS = Number(process.env.CEDAR_WARMUP_MS || 500);

function lit(s) {
    return '"' + String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

// The IAM conditions bench.c writes: resource.name.startsWith('PREFIX').
function whenClause(cond) {
    if (!cond) return '';
    const m = /^resource\.name\.startsWith\('([^'*\\]*)'\)$/.exec(cond.expression);
    if (!m) throw new Error(`cannot express condition in Cedar: ${cond.expression}`);
    return ` when { resource.name like ${lit(m[1] + '*')} }`;
}

function principalScope(member) {
    if (member === 'allUsers') return 'principal';
    return `principal in Principal::${lit(member)}`;
}

// One permit per (binding, member): the same count as wisp's pairs.
function permits(policy, resourceScope, out) {
    for (const b of policy.bindings || []) {
        const tail = `, action in Action::${lit(b.role)}, ${resourceScope})${whenClause(b.condition)};`;
        for (const m of b.members) out.push(`permit(${principalScope(m)}${tail}`);
    }
}

function entities(set, req) {
    const ref = (type, id) => ({ type, id });
    return [
        { uid: ref('Principal', set.caller.principal), attrs: {},
          parents: set.caller.parents.map((p) => ref('Principal', p)) },
        { uid: ref('Action', req.permission), attrs: {},
          parents: req.roles.map((r) => ref('Action', r)) },
        { uid: ref('Bucket', set.target), attrs: { name: set.target },
          parents: [ref('Project', set.project)] },
        { uid: ref('Project', set.project), attrs: {}, parents: [ref('Organization', set.org)] },
    ];
}

function decide(id, set, req, ents) {
    const ans = cedar.statefulIsAuthorized({
        principal: { type: 'Principal', id: set.caller.principal },
        action: { type: 'Action', id: req.permission },
        resource: { type: 'Bucket', id: set.target },
        context: {},
        preparsedPolicySetId: id,
        entities: ents,
    });
    if (ans.type !== 'success')
        throw new Error(`cedar: ${JSON.stringify(ans.errors).slice(0, 500)}`);
    if (ans.response.diagnostics.errors.length)
        throw new Error(`cedar: evaluation errors: ${JSON.stringify(ans.response.diagnostics.errors).slice(0, 500)}`);
    return ans.response.decision === 'allow';
}

function time(id, set, req) {
    const ents = entities(set, req);
    const got = decide(id, set, req, ents); // also the warm-up
    if (got !== req.expect)
        throw new Error(`cedar decided ${got} for ${req.name} at ${set.n}, expected ${req.expect}`);
    // Warm up until V8 has tiered the wasm up (a few thousand calls at small
    // sizes; at large sizes each call is long enough on its own).
    const warmEnd = process.hrtime.bigint() + BigInt(WARMUP_MS) * 1000000n;
    for (let i = 0; i < 5000 && process.hrtime.bigint() < warmEnd; i++) decide(id, set, req, ents);
    let iters = 0;
    const start = process.hrtime.bigint();
    let elapsed = 0n;
    const budget = BigInt(BUDGET_MS) * 1000000n;
    while (iters < 3 || (elapsed < budget && iters < 200000)) {
        decide(id, set, req, ents);
        iters++;
        elapsed = process.hrtime.bigint() - start;
    }
    return { ns: Number(elapsed) / iters, iters };
}

function main() {
    const [file, scope] = process.argv.slice(2);
    if (!file || !['all', 'chain'].includes(scope)) {
        console.error('usage: node cedar.js SET_JSON all|chain');
        process.exit(100);
    }
    const set = JSON.parse(fs.readFileSync(file, 'utf8'));
    const org = [], project = [], target = [], others = [];
    permits(set.org_policy, `resource in Organization::${lit(set.org)}`, org);
    permits(set.project_policy, `resource in Project::${lit(set.project)}`, project);
    for (const b of set.buckets)
        permits(b.policy, `resource in Bucket::${lit(b.name)}`, b.name === set.target ? target : others);
    const all = [...org, ...project, ...target, ...others];
    if (all.length !== set.n)
        throw new Error(`${file}: ${all.length} permits for ${set.n} pairs`);
    // "all": the whole set in one policy store, as Cedar is deployed;
    // "chain": only the target's own, project and organization permits, as
    // if the deployment partitioned its store by resource.
    const list = scope === 'all' ? all : [...org, ...project, ...target];
    // A record of id -> policy: cedar-wasm 4.13 parses one policy text of
    // 100,000 permits in about a minute (it grows faster than linearly),
    // the same permits as separate entries in about 20 s.
    const policies = {};
    list.forEach((p, i) => { policies[`p${i}`] = p; });
    const id = `set-${set.n}-${scope}`;
    const t0 = process.hrtime.bigint();
    const parsed = cedar.preparsePolicySet(id, { staticPolicies: policies });
    if (parsed.type !== 'success')
        throw new Error(`cedar parse: ${JSON.stringify(parsed.errors).slice(0, 500)}`);
    const parseMs = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(['cedar-parse', set.n, scope, list.length, parseMs.toFixed(1)].join('\t'));
    for (const req of set.requests) {
        const r = time(id, set, req);
        console.log(['cedar', set.n, scope, req.name, r.ns.toFixed(1), r.iters].join('\t'));
    }
}

try {
    main();
} catch (e) {
    console.error(`bench/authz: ${e.message}`);
    process.exit(1);
}
