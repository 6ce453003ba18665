import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
same_set = sum(sorted(map(tuple, [x[:3] for x in p])) == sorted(map(tuple, [x[:3] for x in q])) for p, q in zip(a, b))
same_order = sum([x[:3] for x in p] == [x[:3] for x in q] for p, q in zip(a, b))
maxdiff = max((abs(x[3] - y[3]) for p, q in zip(a, b) for x, y in zip(p, q) if x[:3] == y[:3]), default=0)
print(f"{sys.argv[2]}: same passages {same_set}/{len(a)}, same order {same_order}/{len(a)}, max score diff {maxdiff:.4f}")
for n, (p, q) in enumerate(zip(a, b)):
    if [x[:3] for x in p] != [x[:3] for x in q]:
        print("  q", n + 1, [x[:3] for x in p], "->", [x[:3] for x in q])
