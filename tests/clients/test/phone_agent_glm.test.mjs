// The phone agent's traffic (SEED.md) against a GLM-4.1V-architecture model (tiny, random weights, written by
// wb-make-model): the real `openai` client, streaming, a long system prompt, a full-size 1080x2400 PNG
// screenshot per turn under the deployments' 5,000,000-pixel budget, several images in one prompt, thinking on
// and off. Random weights answer nonsense; what is checked is that every request is served and the prompt holds
// exactly the image tokens the reference's processor would make.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import OpenAI from 'openai';
import { startServer, makeTinyGlm41v, makePng, pngDataUrl, waitKvFree } from './helpers.mjs';

let server, client, screenshot, dir;
const MODEL = 'glm41v-tiny';
before(async () => {
    dir = makeTinyGlm41v();
    server = await startServer(['--max-pixels', '5000000', '--threads', '2', '--served-model-name', MODEL], dir);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'EMPTY', maxRetries: 0, timeout: 300000 });
    screenshot = pngDataUrl(makePng(1080, 2400));
});
after(async () => {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
});

const SYSTEM = 'You are a phone-operating agent. Think inside <think></think>, then answer inside <answer></answer> '
    + 'with exactly one action such as do(action="Tap", element=[x,y]).';
const turn = (text, ...images) => ({ role: 'user', content: [
    ...images.map((url) => ({ type: 'image_url', image_url: { url } })), { type: 'text', text }] });

async function streamed(messages, extra = {}) {
    const stream = await client.chat.completions.create({
        model: MODEL, messages, stream: true, stream_options: { include_usage: true }, temperature: 0.0,
        top_p: 0.85, frequency_penalty: 0.2, max_tokens: 16, ...extra,
    });
    let text = '';
    let usage;
    for await (const c of stream) {
        text += c.choices[0]?.delta?.content ?? '';
        if (c.usage) usage = c.usage;
    }
    return { text, usage };
}

// 1080 x 2400 at 5 MP: the reference scales by sqrt(2*1080*2400/5e6) and floors to multiples of 28:
// 1036 x 2352 -> 37 x 84 merged patches.
const SCREEN_TOKENS = 37 * 84;

test('a multi-turn agent conversation with a full-size screenshot per turn streams', async () => {
    const history = [{ role: 'system', content: SYSTEM }];
    let last = 0;
    for (const task of ['Open Settings', 'Turn on Wi-Fi']) {
        const messages = [...history, turn(`** Screen Info **\nTask: ${task}`, screenshot)];
        const { usage } = await streamed(messages);
        assert.ok(usage, 'the usage chunk arrives');
        assert.equal(usage.completion_tokens, 16);
        assert.ok(usage.prompt_tokens > SCREEN_TOKENS + last, `${usage.prompt_tokens} prompt tokens`);
        // Earlier turns keep their text only, as the agent strips old screenshots.
        history.push(turn(`** Screen Info **\nTask: ${task}`),
            { role: 'assistant', content: '<think>look</think><answer>do(action="Back")</answer>' });
        last = usage.prompt_tokens - SCREEN_TOKENS;
    }
    await waitKvFree(server.port);
});

test('the screenshot costs exactly the reference processor\'s token count', async () => {
    const text = 'Tap';
    const withImage = (await streamed([turn(text, screenshot)], { max_tokens: 1 })).usage.prompt_tokens;
    const without = (await streamed([turn(text)], { max_tokens: 1 })).usage.prompt_tokens;
    assert.equal(withImage - without, SCREEN_TOKENS + 2);  // + <|begin_of_image|> and <|end_of_image|>
});

test('several images of different shapes in one prompt', async () => {
    const a = pngDataUrl(makePng(640, 480, 2));
    const b = pngDataUrl(makePng(480, 1200, 3));
    const r = await client.chat.completions.create({ model: MODEL, messages: [turn('Compare the two screens.', a, b)],
        max_tokens: 8, temperature: 0 });
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 8);
});

test('thinking off adds the empty think block to the prompt', async () => {
    const on = (await streamed([turn('Hi', screenshot)], { max_tokens: 1 })).usage.prompt_tokens;
    const off = (await streamed([turn('Hi', screenshot)], { max_tokens: 1, enable_thinking: false })).usage
        .prompt_tokens;
    assert.equal(off - on, 2);  // <think></think>
});

test('typed markers stay text and a corrupt screenshot is a 400; serving continues', async () => {
    const typed = await client.chat.completions.create({ model: MODEL, max_tokens: 1, temperature: 0,
        messages: [{ role: 'user', content: '<|begin_of_image|><|image|><|end_of_image|>' }] });
    // [gMASK] <sop> <|user|> \n, 43 typed bytes, <|assistant|> \n: no image slot.
    assert.equal(typed.usage.prompt_tokens, 4 + 43 + 2);
    const broken = 'data:image/png;base64,' + screenshot.slice(22, 22 + 4000);
    await assert.rejects(streamed([turn('x', broken)]), (e) => e.status === 400 && /image 1/.test(e.message));
    const ok = await streamed([turn('again', screenshot)], { max_tokens: 2 });
    assert.equal(ok.usage.completion_tokens, 2);
});
