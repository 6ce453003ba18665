import math, sys
def erlang_c(c, a):  # a = lambda/mu
    s = sum(a**k / math.factorial(k) for k in range(c)) if c < 170 else None
    # use log-space stable recursion for Erlang B then C
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1 - rho + rho * b)
def replicas(lam, mu, wait_target):
    c = math.floor(lam / mu) + 1
    while True:
        pw = erlang_c(c, lam / mu); wq = pw / (c * mu - lam)
        if wq <= wait_target: return c, pw, wq, lam / (c * mu)
        c += 1
for S in map(float, sys.argv[1:]):
    mu = 1 / S
    for tgt in (0.1 * S, 0.5):
        c, pw, wq, rho = replicas(100.0, mu, tgt)
        print(f"S={S}s mu={mu:.3f}/s wait<= {tgt:.2f}s: c={c} P(wait)={pw:.3f} Wq={wq:.3f}s rho={rho:.3f}")
