# A spectral filter learnt by gradient descent: a two-tone signal with high-frequency noise goes through rfft, a
# learnable complex gain per frequency (torch.complex of two real parameters), irfft; the loss compares with the
# clean, phase-shifted tones and penalises the power spectrum of the error. The data are deterministic.
import json
import math

import torch

n = 64
t = torch.arange(n, dtype=torch.float64) / n
noise = 0.3 * torch.sin(2 * math.pi * 23 * t + 0.7) + 0.2 * torch.cos(2 * math.pi * 29 * t)
noisy = torch.sin(2 * math.pi * 3 * t) + 0.5 * torch.sin(2 * math.pi * 5 * t) + noise
clean = torch.sin(2 * math.pi * 3 * t + 0.4) + 0.5 * torch.sin(2 * math.pi * 5 * t - 0.3)  # and a phase change

freqs = torch.fft.rfftfreq(n, d=1.0 / n)
gain_re = torch.nn.Parameter(torch.full((n // 2 + 1,), 0.5, dtype=torch.float64))
gain_im = torch.nn.Parameter(torch.zeros(n // 2 + 1, dtype=torch.float64))
opt = torch.optim.SGD([gain_re, gain_im], lr=0.5, momentum=0.5)
for _ in range(12):
    spectrum = torch.fft.rfft(noisy, norm="ortho")
    gain = torch.complex(gain_re, gain_im)
    filtered = torch.fft.irfft(spectrum * gain, n=n, norm="ortho")
    err = filtered - clean
    loss = (err ** 2).mean() + 1e-3 * (torch.fft.fft(err).abs() ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()

with torch.no_grad():
    gain = torch.complex(gain_re, gain_im)
    out = torch.fft.irfft(torch.fft.rfft(noisy, norm="ortho") * gain, n=n, norm="ortho")
    centred = torch.fft.fftshift(torch.fft.fft(out))
    power = torch.view_as_real(centred).pow(2).sum(-1)
print(json.dumps({"loss": round(loss.item(), 8),
                  "gain_at": [round(v, 6) for v in gain.abs()[[3, 5, 23, 29]].tolist()],
                  "angle_at_3": round(gain.angle()[3].item(), 6),
                  "residual": round((out - clean).abs().max().item(), 6),
                  "peak_bin": int(power.argmax().item()), "freq_23": freqs[23].item(),
                  "dtype": str(centred.dtype).split(".")[-1],
                  "float32_rfft": str(torch.fft.rfft(noisy.float()).dtype).split(".")[-1]}))
