using Assistant.Capture;
using Assistant.Capture.World;

namespace Assistant.Engine;

/// <summary>
/// The world's part of a live session, kept out of its loop: on the world source without a question of the user's,
/// a new question about the scene as it is now every <c>questionEvery</c> frames; each finished answer scored against
/// the picture it describes (in snapshot mode, the frame the answer started on). Other sources have no truth, and
/// this part does nothing for them. Memory is flat: the world steps of the last frames only (<see cref="RecentFrames"/>).
/// </summary>
internal sealed class WorldQuiz(WorldFrameSource? world, bool userQuestion, int questionEvery)
{
    private readonly RecentFrames _steps = new();
    private WorldQuestion? _question;
    private bool _userAsked = userQuestion;

    /// <summary>Answers scored, and how many were right.</summary>
    public int Scored { get; private set; }

    /// <summary>Answers that matched the truth.</summary>
    public int Correct { get; private set; }

    /// <summary>The live accuracy so far; null before the first scored answer.</summary>
    public Accuracy? Accuracy => Scored == 0 ? null : new Accuracy(Correct, Scored);

    /// <summary>The user asked a question of their own: it has no known truth, and the world stops asking.</summary>
    public void UserAsked()
    {
        _question = null;
        _userAsked = true;
    }

    /// <summary>Before pipeline frame <paramref name="index"/> of <paramref name="frame"/>: a new world question when one is due; the frame's step recorded.</summary>
    public void BeforeFrame(long index, Frame frame, FramePipeline pipeline)
    {
        if (world is not null && !_userAsked && index % questionEvery == 0)
        {
            long step = WorldFrameSource.StepOf(frame);
            var objects = world.World.ObjectsAt(step);
            int n = (int)(index / questionEvery);
            _question = WorldQuestions.For(objects, WorldQuestions.QuestionSeed(world.World.Seed, n))
                        ?? WorldQuestions.For(objects, WorldQuestions.QuestionSeed(world.World.Seed, n), "count")!;
            pipeline.SetQuery(_question.Text);
        }
        _steps.Add(world is null ? 0 : WorldFrameSource.StepOf(frame));
    }

    /// <summary>The truth for a finished answer to a world question (counted), else null.</summary>
    public string? Score(FrameOutcome outcome, string answer)
    {
        if (_question is null || world is null || !outcome.AnswerDone) return null;
        var truth = world.World.Truth(_question, _steps.At(outcome.AnswerStartedAt));
        Scored++;
        if (answer == truth) Correct++;
        return truth;
    }
}
