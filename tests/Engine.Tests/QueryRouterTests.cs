using Assistant.Capture.World;

namespace Assistant.Engine.Tests;

public sealed class QueryRouterTests
{
    [Theory]
    [InlineData("read the screen", "reading verb 'read'")]
    [InlineData("What does it say?", "reading verb 'say'")]
    [InlineData("what's written on the sign", "reading verb 'written'")]
    [InlineData("what is the error?", "written thing 'error'")]
    [InlineData("which error message is shown", "written thing 'error'")]
    [InlineData("what is the title of this window", "written thing 'title'")]
    [InlineData("what version is installed?", "written thing 'version'")]
    [InlineData("what's the total price", "written thing 'total'")]
    [InlineData("what number is on the door?", "written thing 'number'")]
    [InlineData("is \"Save\" greyed out?", "quoted text")]
    [InlineData("where is the 'Cancel' button?", "quoted text")]
    [InlineData("which URL is open", "written thing 'url'")]
    public void TextQueries_GoToOcr(string query, string rule)
    {
        var d = QueryRouter.Route(query);
        Assert.Equal(QueryRoute.Ocr, d.Route);
        Assert.Equal(rule, d.Rule);
    }

    [Theory]
    [InlineData("what color is the square?")]
    [InlineData("how many circles are there?")]
    [InlineData("is the small red circle left of the blue square?")]
    [InlineData("what shape is the object nearest to the large green triangle?")]
    [InlineData("is there a yellow triangle?")]
    [InlineData("are there more squares than circles?")]
    [InlineData("what is the person holding?")]
    [InlineData("what's in the top left corner?")]
    [InlineData("it's dark: what animal is that?")]
    public void VisualQueries_GoToTheVisualPath(string query)
    {
        var d = QueryRouter.Route(query);
        Assert.Equal(QueryRoute.Visual, d.Route);
        Assert.Equal("no text cue", d.Rule);
    }

    [Fact]
    public void EveryWorldQuestion_IsVisual()
    {
        // The embedded default only answers world questions; none of them may be sent to OCR.
        for (long seed = 2_000_000; seed < 2_000_300; seed++)
            foreach (var family in WorldDefinition.Families)
                foreach (var q in WorldQuestions.Generate(seed, 4, family))
                    Assert.Equal(QueryRoute.Visual, QueryRouter.Route(q.Text).Route);
    }

    [Fact]
    public void ForcedRoutes_AndABadMode()
    {
        Assert.Equal(new RouteDecision(QueryRoute.Ocr, "forced"), QueryRouter.Decide("what color is it", "ocr"));
        Assert.Equal(new RouteDecision(QueryRoute.Visual, "forced"), QueryRouter.Decide("read this", "visual"));
        Assert.Equal("route ocr (quoted text)", QueryRouter.Decide("is 'OK' there", "auto").ToString());
        Assert.Contains("--route must be", Assert.Throws<EngineException>(() => QueryRouter.Decide("x", "both")).Message);
    }
}
