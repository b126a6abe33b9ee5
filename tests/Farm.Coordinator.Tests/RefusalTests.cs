using Farm.Dockerfile.Planning;
using Farm.Coordinator.Builds;
using Farm.Dockerfile.Graph;

namespace Farm.Coordinator.Tests;

/// <summary>
/// Features the job contract cannot express are refused (FARM4204) while planning, before any job, naming the file,
/// line and column; building without them would give a wrong image, not a slower one.
/// </summary>
public sealed class RefusalTests
{
    [Theory]
    [InlineData("FROM busybox\nRUN true\n  RUN --security=insecure true\n", "Dockerfile:3:3: RUN --security=insecure")]
    public void A_run_or_copy_flag_farm_cannot_honour_is_refused_naming_its_place(string dockerfile, string expected)
    {
        var graph = BuildGraph.Create(dockerfile, "Dockerfile", new BuildGraphOptions());

        var error = Assert.Throws<UnsupportedBuildFeatureException>(() => BuildOrchestrator.RefuseUnsupported(graph));

        Assert.Equal("FARM4204", error.Code);
        Assert.StartsWith("FARM4204: " + expected + " is not supported", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_base_image_with_onbuild_triggers_is_not_refused_its_triggers_are_steps()
    {
        var options = new BuildGraphOptions
        {
            ResolveBaseImage = (reference, _) => reference == "example/with-triggers:1"
                ? new BaseImageConfig { OnBuild = ["RUN echo triggered > /t"] }
                : null,
        };
        var graph = BuildGraph.Create("FROM busybox AS tools\nRUN true\n\nFROM example/with-triggers:1\nRUN true\n", "app.Dockerfile", options);

        BuildOrchestrator.RefuseUnsupported(graph);

        Assert.Equal("RUN echo triggered > /t", graph.Target.Steps[0].Text);
    }

    [Fact]
    public void A_dockerfile_with_none_of_them_is_not_refused()
    {
        var options = new BuildGraphOptions { ResolveBaseImage = (_, _) => new BaseImageConfig { Env = ["PATH=/bin"] } };
        var graph = BuildGraph.Create("FROM busybox\nRUN --network=none true\nRUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t true\nCOPY a /a\nCOPY --parents ./x/./y/z /dst/\nONBUILD RUN echo for-children\n", "Dockerfile", options);

        BuildOrchestrator.RefuseUnsupported(graph);

        Assert.Single(graph.StagesToBuild);
    }

    [Fact]
    public void RUN_network_host_without_the_builds_network_host_entitlement_is_refused_naming_its_place()
    {
        var graph = BuildGraph.Create("FROM busybox\nRUN true\n RUN --network=host true\n", "Dockerfile", new BuildGraphOptions());

        var error = Assert.Throws<EntitlementNotGrantedException>(() => BuildOrchestrator.RefuseUnrequested(graph, []));

        Assert.StartsWith("FARM4220: Dockerfile:3:2: RUN --network=host needs the network.host entitlement", error.Message, StringComparison.Ordinal);
        Assert.Contains("--allow network.host", error.Message, StringComparison.Ordinal);
        BuildOrchestrator.RefuseUnrequested(graph, [Farm.Contracts.Entitlements.NetworkHost]);
        BuildOrchestrator.RefuseUnrequested(BuildGraph.Create("FROM busybox\nRUN --network=none true\nRUN --network=default true\n", "Dockerfile", new BuildGraphOptions()), []);
    }

    [Fact]
    public void Without_a_context_index_a_step_reading_the_context_fails_planning_naming_it_and_others_plan()
    {
        var options = new BuildGraphOptions { ResolveBaseImage = (_, _) => new BaseImageConfig { Env = ["PATH=/bin"] } };
        var digest = "sha256:" + new string('a', 64);
        var runOnly = BuildGraph.Create("FROM busybox\nRUN echo hi > /x\nWORKDIR /w\n", "Dockerfile", options);
        var copies = BuildGraph.Create("FROM busybox\nRUN true\nCOPY a.txt /a\n", "Dockerfile", options);

        Assert.Equal(2, CacheKeyPlanner.Compute(runOnly, null, _ => digest).Steps.Count);
        var error = Assert.Throws<ContextIndexUnavailableException>(() => CacheKeyPlanner.Compute(copies, null, _ => digest));

        Assert.StartsWith("FARM4203: Dockerfile:3:1: step s0/", error.Message, StringComparison.Ordinal);
        Assert.Contains("`COPY a.txt /a` reads the build context", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("FROM busybox\nRUN --mount=type=secret,id=npm,required=true true\n", "FARM4311: Dockerfile:2:1: RUN --mount=type=secret,id=npm,required=true needs the secret 'npm'")]
    [InlineData("FROM busybox\nRUN true\n RUN --mount=type=ssh,required true\n", "FARM4311: Dockerfile:3:2: RUN --mount=type=ssh,id=default,required=true needs the SSH agent 'default'")]
    public void A_required_secret_or_agent_the_build_was_not_given_is_refused_before_any_job(string dockerfile, string expected)
    {
        var graph = BuildGraph.Create(dockerfile, "Dockerfile", new BuildGraphOptions());

        var error = Assert.Throws<BuildSecretMissingException>(() => BuildOrchestrator.RequireSecrets(graph, ["other"], []));

        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Secrets_that_are_given_or_not_required_pass()
    {
        var graph = BuildGraph.Create("FROM busybox\nRUN --mount=type=secret,id=npm,required=true --mount=type=secret,id=opt --mount=type=ssh true\n", "Dockerfile", new BuildGraphOptions());

        BuildOrchestrator.RequireSecrets(graph, ["npm"], []);

        Assert.Single(graph.StagesToBuild);
    }
}
