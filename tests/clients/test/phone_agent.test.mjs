// The traffic of AutoGLM's phone agent (SEED.md): openai client, stream=True, temperature 0, top_p 0.85,
// frequency_penalty 0.2, max_tokens 3000, a long system prompt, one full-size PNG screenshot per user turn and
// earlier turns' images stripped. The fixture is text-only, so the answer must be a clear 400 — and the server
// must go on serving.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, MODEL, makePng, pngDataUrl, waitKvFree } from './helpers.mjs';

let server, client, screenshot;
before(async () => {
    server = await startServer();
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'EMPTY', maxRetries: 0, timeout: 120000 });
    screenshot = pngDataUrl(makePng(1080, 2400));
});
after(async () => { await server.stop(); });

const SYSTEM = [
    'You are a phone-operating agent. Each turn you see a screenshot of the phone and the task.',
    'Think inside <think></think>, then answer inside <answer></answer> with exactly one action:',
    'do(action="Launch", app="..."), do(action="Tap", element=[x,y]), do(action="Type", text="..."),',
    'do(action="Swipe", start=[x1,y1], end=[x2,y2]), do(action="Long Press", element=[x,y]),',
    'do(action="Back"), do(action="Home"), do(action="Wait", duration="1 seconds"), finish(message="...").',
    'Coordinates run from 0 to 999 across the screenshot\'s width and height.',
].join('\n').repeat(8);

const turn = (text, image) => ({ role: 'user', content: [
    ...(image ? [{ type: 'image_url', image_url: { url: image } }] : []), { type: 'text', text }] });

async function agentRequest(messages, extra = {}) {
    const stream = await client.chat.completions.create({
        model: MODEL, messages, stream: true, temperature: 0.0, top_p: 0.85, frequency_penalty: 0.2,
        max_tokens: 64, ...extra,
    });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    return text;
}

test('the screenshot is full size and several MB', () => {
    assert.ok(screenshot.length > 3e6, `data URL of ${(screenshot.length / 1e6).toFixed(1)} MB`);
});

test('each turn with a screenshot gets a 400 saying the model takes no images; serving continues', async () => {
    const history = [{ role: 'system', content: SYSTEM }];
    for (const [i, task] of ['Open Settings', 'Turn on Wi-Fi', 'Go back home'].entries()) {
        // Earlier turns keep their text only, as the agent strips old screenshots.
        const messages = [...history, turn(`** Screen Info **\nTask: ${task}`, screenshot)];
        await assert.rejects(agentRequest(messages, { max_tokens: 3000 }), (e) => {
            assert.equal(e.status, 400);
            assert.match(e.message, /does not accept images/);
            assert.equal(e.code, 'model_does_not_support_images');
            assert.equal(e.param, `messages[${messages.length - 1}].content[0]`);
            return true;
        });
        history.push(turn(`** Screen Info **\nTask: ${task}`), { role: 'assistant',
            content: `<think>step ${i}</think><answer>do(action="Back")</answer>` });
        const ok = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user',
            content: 'Once upon a time' }], max_tokens: 4, temperature: 0 });
        assert.equal(ok.usage.completion_tokens, 4, 'the server still serves after the 400');
    }
});

test('the same conversation without images streams (the rest of the shape is accepted)', async () => {
    const messages = [{ role: 'system', content: 'You operate a phone.' }, turn('Task: open Settings'),
        { role: 'assistant', content: 'do(action="Launch", app="Settings")' }, turn('Task: turn on Wi-Fi')];
    const text = await agentRequest(messages);
    assert.ok(text.length > 0);
});

test('broken screenshots get their own errors, checked before the modality', async () => {
    const cases = [
        ['data:image/png;base64,' + screenshot.slice(22, 5000) + '*', 'invalid_base64'],
        ['data:image/png;base64,' + Buffer.from('GIF89a not a png at all').toString('base64'), 'invalid_image'],
        ['data:image/png,' + 'abcd', 'invalid_image_url'],
        ['https://example.com/screen.png', 'invalid_image_url'],
    ];
    for (const [url, code] of cases) {
        await assert.rejects(agentRequest([turn('Task: x', url)]), (e) => e.status === 400 && e.code === code,
            code);
    }
    const eleven = Array.from({ length: 11 }, () => ({ type: 'image_url', image_url: { url: 'data:,' } }));
    await assert.rejects(agentRequest([{ role: 'user', content: eleven }]),
        (e) => e.status === 400 && e.code === 'too_many_images' && /at most 10/.test(e.message));
    await waitKvFree(server.port);
});

test('input_audio parts are validated the same way', async () => {
    const wav = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WAVEfmt '), Buffer.alloc(16)]);
    const audio = (data, format = 'wav') => [{ role: 'user', content: [{ type: 'input_audio',
        input_audio: { data, format } }, { type: 'text', text: 'hi' }] }];
    await assert.rejects(agentRequest(audio(wav.toString('base64'))),
        (e) => e.status === 400 && e.code === 'model_does_not_support_audio');
    await assert.rejects(agentRequest(audio('%%%')), (e) => e.status === 400 && e.code === 'invalid_base64');
    await assert.rejects(agentRequest(audio(Buffer.from('not audio!').toString('base64'))),
        (e) => e.status === 400 && e.code === 'invalid_audio');
});
