// The official `openai` package's audio.transcriptions.create against `wb serve --asr-model` (a tiny random
// Whisper written by wb-make-whisper beside wb): json, text and verbose_json answers equal `wb transcribe`'s
// result for the same file; an input_audio chat part is transcribed into the prompt (docs/VOICE.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import OpenAI from 'openai';
import { startServer, wbBinary, fixtureModel, MODEL } from './helpers.mjs';

const fixtures = process.env.WB_FIXTURES_DIR || path.join(path.dirname(fixtureModel()), '..', '..');
const jfk = path.join(fixtures, 'audio', 'jfk.wav');
let server, client, whisper, cliText;

before(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-whisper-'));
    whisper = path.join(dir, 'ggml-random.bin');
    const maker = path.join(path.dirname(wbBinary()), 'wb-make-whisper');
    const r = spawnSync(maker, ['--vocab-from', path.join(fixtures, 'audio', 'for-tests-ggml-tiny.bin'), '--hf',
        path.join(dir, 'hf'), '--ggml', whisper], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`wb-make-whisper failed: ${r.stderr || r.error}`);
    const cli = spawnSync(wbBinary(), ['transcribe', jfk, '-m', whisper, '-l', 'en', '--json', '-t', '1'],
        { encoding: 'utf8' });
    if (cli.status !== 0) throw new Error(`wb transcribe failed: ${cli.stderr}`);
    cliText = JSON.parse(cli.stdout).text;
    server = await startServer(['--asr-model', whisper]);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'EMPTY', maxRetries: 0, timeout: 120000 });
});
after(async () => { if (server) assert.equal(await server.stop(), 0, 'wb serve exits cleanly on SIGTERM'); });

test('audio.transcriptions.create: json, text and verbose_json', async () => {
    // The same decoding as the CLI's defaults (5 beams, the fallback from temperature 0, seed 0).
    const j = await client.audio.transcriptions.create({ file: fs.createReadStream(jfk), model: 'whisper-1', language: 'en' });
    assert.equal(j.text, cliText);
    const t = await client.audio.transcriptions.create({
        file: fs.createReadStream(jfk), model: 'whisper-1', language: 'en', response_format: 'text',
    });
    assert.equal(String(t).trim(), j.text);
    const v = await client.audio.transcriptions.create({
        file: fs.createReadStream(jfk), model: 'whisper-1', language: 'en', response_format: 'verbose_json',
    });
    assert.equal(v.text, j.text);
    assert.equal(v.language, 'en');
    assert.equal(v.duration, 11);
    assert.ok(v.segments.length >= 1);
    assert.ok(v.segments.every((s) => s.start >= 0 && s.end <= 11 && s.start <= s.end));
});

test('temperature: sampling from it, seeded, reported per segment; out of range is a 400', async () => {
    const ask = (extra) => client.audio.transcriptions.create({
        file: fs.createReadStream(jfk), model: 'whisper-1', language: 'en', response_format: 'verbose_json', ...extra,
    });
    const a = await ask({ temperature: 0.6, seed: 5 });
    assert.ok(a.segments.length >= 1);
    assert.ok(a.segments.every((s) => s.temperature >= 0.6 - 1e-6 && s.temperature <= 1 + 1e-6));
    assert.ok(a.segments.every((s) => s.compression_ratio > 0 && s.avg_logprob <= 0));
    const b = await ask({ temperature: 0.6, seed: 5 });
    assert.equal(b.text, a.text, 'the same seed, the same sample');
    const greedy = await ask({ temperature: 0 });
    assert.ok(greedy.segments.every((s) => s.temperature >= 0));
    await assert.rejects(ask({ temperature: 3 }), (e) => e.status === 400 && /temperature/.test(e.message));
});

test('a file that is not audio is a 400 naming the problem', async () => {
    const bad = path.join(os.tmpdir(), `wb-not-audio-${process.pid}.wav`);
    fs.writeFileSync(bad, 'this is not audio');
    await assert.rejects(client.audio.transcriptions.create({ file: fs.createReadStream(bad), model: 'whisper-1' }),
        (e) => e.status === 400 && /not a WAV/.test(e.message));
});

test('an input_audio chat part becomes the transcript in the prompt', async () => {
    const data = fs.readFileSync(jfk).toString('base64');
    const withAudio = await client.chat.completions.create({
        model: MODEL, max_tokens: 2, temperature: 0,
        messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }, { type: 'input_audio', input_audio: { data, format: 'wav' } }] }],
    });
    const textOnly = await client.chat.completions.create({
        model: MODEL, max_tokens: 2, temperature: 0, messages: [{ role: 'user', content: 'Hi' }],
    });
    // The transcript (hundreds of tokens from the random model) is in the prompt.
    assert.ok(withAudio.usage.prompt_tokens > textOnly.usage.prompt_tokens + 20,
        `${withAudio.usage.prompt_tokens} vs ${textOnly.usage.prompt_tokens}`);
});
