// web/agent/notify.js - getting the agent's attention: the "(N) …" badge in
// the window title and a short beep.
//
// The beep is synthesised with WebAudio (an oscillator through a gain
// envelope), so the page needs no audio file. Browsers only let audio
// start after a user gesture, so the AudioContext is created or resumed on
// the first click/key press after the sound is switched on. The choice is
// kept in localStorage: it is a preference of the person at this browser,
// not of the signed-in agent.

const SOUND_KEY = 'chatcore.agent.sound';
const MIN_GAP_MS = 800;   // a burst of messages beeps once

export class Notifier {
    constructor() {
        this.base = document.title;
        this.count = 0;
        this.sound = readSound();
        this.ctx = null;
        this.lastBeep = 0;
        this.beeps = 0;         // how many beeps played; for tests
        this.onchange = null;
        const unlock = () => {
            if (this.sound)
                this.audio();
        };
        document.addEventListener('pointerdown', unlock, true);
        document.addEventListener('keydown', unlock, true);
    }

    setBase(title) {
        this.base = title;
        this.render();
    }

    setCount(n) {
        this.count = n;
        this.render();
    }

    render() {
        document.title = this.count > 0 ? `(${this.count}) ${this.base}` : this.base;
    }

    setSound(on) {
        this.sound = !!on;
        try {
            localStorage.setItem(SOUND_KEY, this.sound ? 'on' : 'off');
        } catch { /* kept for this page only */ }
        if (this.sound)
            this.audio();   // called from the toggle's click: a gesture
    }

    audio() {
        try {
            if (!this.ctx) {
                const AC = window.AudioContext || window.webkitAudioContext;
                if (!AC)
                    return null;
                this.ctx = new AC();
            }
            if (this.ctx.state === 'suspended')
                this.ctx.resume().catch(() => {});
        } catch {
            return null;
        }
        return this.ctx;
    }

    beep() {
        if (!this.sound)
            return false;
        const now = Date.now();
        if (now - this.lastBeep < MIN_GAP_MS)
            return false;
        this.lastBeep = now;
        const ctx = this.audio();
        if (!ctx)
            return false;
        try {
            const t0 = ctx.currentTime + 0.01;
            const osc = ctx.createOscillator();
            const gain = ctx.createGain();
            osc.type = 'sine';
            osc.frequency.setValueAtTime(880, t0);
            osc.frequency.setValueAtTime(1175, t0 + 0.09);
            gain.gain.setValueAtTime(0.0001, t0);
            gain.gain.exponentialRampToValueAtTime(0.18, t0 + 0.02);
            gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.22);
            osc.connect(gain);
            gain.connect(ctx.destination);
            osc.start(t0);
            osc.stop(t0 + 0.25);
        } catch {
            return false;
        }
        this.beeps++;
        if (this.onchange)
            this.onchange();
        return true;
    }
}

function readSound() {
    try {
        return localStorage.getItem(SOUND_KEY) === 'on';
    } catch {
        return false;
    }
}
