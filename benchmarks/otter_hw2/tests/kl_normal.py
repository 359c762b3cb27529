"""hw2 in Otter: kl_normal, three plain assertions (benchmarks/speed.py)."""
OK_FORMAT = True

test = {'name': 'kl_normal',
 'points': 3,
 'suites': [{'cases': [{'code': '>>> import torch\n'
                                '>>> m, lv = torch.randn(4, 3), torch.randn(4, 3)\n'
                                '>>> torch.allclose(kl_normal(m, lv, m, lv), torch.zeros(4), atol=1e-6)\n'
                                'True',
                        'hidden': False,
                        'locked': False,
                        'points': 1},
                       {'code': '>>> import torch\n'
                                '>>> kl = kl_normal(torch.zeros(2, 5), torch.zeros(2, 5), torch.ones(2, 5), '
                                'torch.zeros(2, 5))\n'
                                '>>> tuple(kl.shape), bool(torch.allclose(kl, torch.full((2,), 2.5)))\n'
                                '((2,), True)',
                        'hidden': False,
                        'locked': False,
                        'points': 1},
                       {'code': '>>> import torch\n'
                                '>>> q = torch.distributions.Normal(torch.tensor([0.3, -1.0]), '
                                'torch.tensor([0.5, 2.0]))\n'
                                '>>> p = torch.distributions.Normal(torch.tensor([1.0, 0.0]), '
                                'torch.tensor([1.5, 0.7]))\n'
                                '>>> expected = torch.distributions.kl_divergence(q, p).sum(-1)\n'
                                '>>> got = kl_normal(q.mean, 2 * q.stddev.log(), p.mean, 2 * '
                                'p.stddev.log())\n'
                                '>>> bool(torch.allclose(got, expected, atol=1e-5))\n'
                                'True',
                        'hidden': False,
                        'locked': False,
                        'points': 1}],
             'scored': True,
             'setup': '',
             'teardown': '',
             'type': 'doctest'}]}
