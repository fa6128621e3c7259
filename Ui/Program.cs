using Assistant.Ui;

return await Cli.RunAsync(args, Console.Out, Console.Error, Console.In);
