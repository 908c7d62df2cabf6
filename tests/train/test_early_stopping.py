from tunesmith.train.early_stopping import EarlyStopping


def test_patience_counts_evaluations_without_improvement() -> None:
    stopper = EarlyStopping("accuracy", patience=2)
    assert stopper.update({"accuracy": 0.5, "loss": 1.0}, step=10)
    assert not stopper.update({"accuracy": 0.4, "loss": 1.1}, step=20)
    assert not stopper.should_stop
    assert not stopper.update({"accuracy": 0.45, "loss": 1.2}, step=30)
    assert stopper.should_stop
    assert (stopper.best, stopper.best_step) == (0.5, 10)


def test_ties_go_to_the_lower_loss() -> None:
    stopper = EarlyStopping("accuracy")
    stopper.update({"accuracy": 1.0, "loss": 0.9}, step=1)
    assert stopper.update({"accuracy": 1.0, "loss": 0.3}, step=2)
    assert not stopper.update({"accuracy": 1.0, "loss": 0.5}, step=3)
    assert stopper.best_step == 2


def test_loss_is_lower_is_better() -> None:
    stopper = EarlyStopping("loss", patience=1)
    stopper.update({"loss": 0.7}, step=1)
    assert stopper.update({"loss": 0.6}, step=2)
    assert not stopper.update({"loss": 0.65}, step=3)
    assert stopper.should_stop
