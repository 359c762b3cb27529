"""hw2 in Otter: log_mean_exp, three plain assertions (benchmarks/speed.py)."""
OK_FORMAT = True

test = {'name': 'log_mean_exp',
 'points': 3,
 'suites': [{'cases': [{'code': '>>> import torch\n'
                                '>>> bool(torch.allclose(log_mean_exp(torch.full((3, 4), 2.0), 1), '
                                'torch.full((3,), 2.0)))\n'
                                'True',
                        'hidden': False,
                        'locked': False,
                        'points': 1},
                       {'code': '>>> import torch\n'
                                '>>> x = torch.randn(5, 7)\n'
                                '>>> expected = x.exp().mean(0).log()\n'
                                '>>> bool(torch.allclose(log_mean_exp(x, 0), expected, atol=1e-5))\n'
                                'True',
                        'hidden': False,
                        'locked': False,
                        'points': 1},
                       {'code': '>>> import torch\n'
                                '>>> got = log_mean_exp(torch.tensor([1000.0, 1000.0]), 0)\n'
                                '>>> bool(torch.isfinite(got)) and abs(got.item() - 1000.0) < 1e-3\n'
                                'True',
                        'hidden': False,
                        'locked': False,
                        'points': 1}],
             'scored': True,
             'setup': '',
             'teardown': '',
             'type': 'doctest'}]}
