"""hw2 in Otter: log_bernoulli_with_logits, three plain assertions (benchmarks/speed.py)."""
OK_FORMAT = True

test = {'name': 'log_bernoulli_with_logits',
 'points': 3,
 'suites': [{'cases': [{'code': '>>> import torch\n'
                                '>>> x = torch.tensor([[1.0, 0.0, 1.0]])\n'
                                '>>> got = log_bernoulli_with_logits(x, torch.zeros(1, 3))\n'
                                '>>> bool(torch.allclose(got, torch.tensor([3 * '
                                'torch.tensor(0.5).log().item()])))\n'
                                'True',
                        'hidden': False,
                        'locked': False,
                        'points': 1},
                       {'code': '>>> import torch\n'
                                '>>> x, logits = torch.bernoulli(torch.full((4, 6), 0.5)), torch.randn(4, '
                                '6)\n'
                                '>>> expected = '
                                'torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)\n'
                                '>>> bool(torch.allclose(log_bernoulli_with_logits(x, logits), expected, '
                                'atol=1e-5))\n'
                                'True',
                        'hidden': False,
                        'locked': False,
                        'points': 1},
                       {'code': '>>> import torch\n'
                                '>>> got = log_bernoulli_with_logits(torch.tensor([[1.0, 0.0]]), '
                                'torch.tensor([[100.0, -100.0]]))\n'
                                '>>> bool(torch.isfinite(got).all()) and abs(got.item()) < 1e-6\n'
                                'True',
                        'hidden': False,
                        'locked': False,
                        'points': 1}],
             'scored': True,
             'setup': '',
             'teardown': '',
             'type': 'doctest'}]}
