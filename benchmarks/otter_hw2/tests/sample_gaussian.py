"""hw2 in Otter: sample_gaussian, three plain assertions (benchmarks/speed.py)."""
OK_FORMAT = True

test = {'name': 'sample_gaussian',
 'points': 3,
 'suites': [{'cases': [{'code': '>>> import torch\n'
                                '>>> z = sample_gaussian(torch.zeros(3, 2), torch.zeros(3, 2), torch.ones(3, '
                                '2))\n'
                                '>>> bool(torch.allclose(z, torch.ones(3, 2)))\n'
                                'True',
                        'hidden': False,
                        'locked': False,
                        'points': 1},
                       {'code': '>>> import torch\n'
                                '>>> z = sample_gaussian(torch.tensor([1.0]), torch.tensor([2.0]), '
                                'torch.tensor([0.5]))\n'
                                '>>> bool(torch.allclose(z, 1.0 + torch.tensor(1.0).exp() * 0.5))\n'
                                'True',
                        'hidden': False,
                        'locked': False,
                        'points': 1},
                       {'code': '>>> import torch\n'
                                '>>> _ = torch.manual_seed(0)\n'
                                '>>> z = sample_gaussian(torch.full((20000,), 3.0), torch.full((20000,), '
                                '0.0))\n'
                                '>>> abs(z.mean().item() - 3.0) < 0.05, abs(z.std().item() - 1.0) < 0.05\n'
                                '(True, True)',
                        'hidden': False,
                        'locked': False,
                        'points': 1}],
             'scored': True,
             'setup': '',
             'teardown': '',
             'type': 'doctest'}]}
